package outbox

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/lib/pq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/uberpopug/ates/services/storage"
)

// Waking the active relay of another process (R-EVT-4, R-ACC-10). Notify wakes a relay of the
// process that committed; on PostgreSQL the active relay is often in another process (a worker,
// while a gateway commits). There Notify also announces the commit: a pg_notify on the context
// database, in a transaction of its own after the producer's commit; the active relay LISTENs
// on a session of its own and takes a notification as a Notify. The poll stays the fallback for
// a lost notification, a listener reconnecting, or a commit nobody announced.
//
// Not a trigger on outbox_events (a NOTIFY inside the producer's transaction): PostgreSQL
// serializes the commits of all transactions that notify on one cluster-wide lock held across
// the commit's WAL flush, which takes group commit away from concurrent producers
// (docs/decisions.md).

// notifyChannel is the channel announcements use. PostgreSQL scopes channels to a database and
// every context has its own database, so one name serves every context.
const notifyChannel = "ates_outbox"

// Reconnect waits of a relay's listening session (doubling from min to max).
const (
	listenMinReconnect = 100 * time.Millisecond
	listenMaxReconnect = 5 * time.Second
)

// announceTimeout bounds one pg_notify round trip.
const announceTimeout = 5 * time.Second

// announceSpacing is the least time between two announcements. Each is a round trip and a
// transaction of its own, committed under PostgreSQL's cluster-wide notify lock, and wakes the
// listening session: back to back, a gateway completing a thousand tasks a second sent six
// hundred of them a second, most to a relay busy publishing what the previous one announced.
// Spaced, a burst of commits costs at most one announcement per spacing, and the relay hears of
// a commit at most this much later — and reads, publishes and marks the commits of a spacing
// together. The value is the one of those tried (shorter and longer) that gave the lowest push
// latency under load (docs/benchmarks.md, "Live balance").
const announceSpacing = 5 * time.Millisecond

// announcer sends pg_notify for the commits of this process, one at a time and at least
// announceSpacing apart: announcements made meanwhile are served together by the next, so a
// burst of commits costs a few round trips, none of them on a producer's time. It sends them
// on a connection of its own (a pool of one, opened from the database's URL): through the
// pool its producers use, an announcement waited behind every request queued for a
// connection — under a backlog, the active relay then heard of commits only at its poll.
type announcer struct {
	db     *storage.DB
	log    *slog.Logger
	sent   prometheus.Counter
	kick   chan struct{}
	start  sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{} // closed once run has returned (or will never run)
}

func newAnnouncer(db *storage.DB, log *slog.Logger, sent prometheus.Counter) *announcer {
	ctx, cancel := context.WithCancel(context.Background())
	return &announcer{db: db, log: log, sent: sent, kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// announce asks for a pg_notify that starts after this call. It never blocks.
func (a *announcer) announce() {
	a.start.Do(func() { go a.run() })
	select {
	case a.kick <- struct{}{}:
	default: // one is pending already and starts after this call
	}
}

func (a *announcer) run() {
	defer close(a.done)
	conn := a.db.SQL // without a URL (a pool opened some other way): the producers' pool
	if a.db.URL != "" {
		own, err := sql.Open("postgres", a.db.URL)
		if err != nil {
			a.log.Warn("outbox: opening the announcements' connection; announcing through the pool", "error", err)
		} else {
			own.SetMaxOpenConns(1)
			own.SetMaxIdleConns(1)
			defer own.Close()
			conn = own
		}
	}
	failing := false
	spacing := time.NewTimer(0)
	defer spacing.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.kick:
		}
		select { // the previous announcement's spacing
		case <-a.ctx.Done():
			return
		case <-spacing.C:
		}
		ctx, cancel := context.WithTimeout(a.ctx, announceTimeout)
		_, err := conn.ExecContext(ctx, "SELECT pg_notify($1, '')", notifyChannel)
		cancel()
		switch {
		case err != nil && a.ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				a.log.Warn("outbox: announcing commits to the active relay failed; it finds them when it polls", "error", err)
			}
			failing = true
		default:
			if failing {
				a.log.Info("outbox: announcing commits to the active relay again")
			}
			failing = false
			a.sent.Inc()
		}
		spacing.Reset(announceSpacing)
	}
}

// close stops the announcer and waits for an announcement in flight.
func (a *announcer) close() {
	a.start.Do(func() { close(a.done) }) // never started
	a.cancel()
	<-a.done
}

// listen LISTENs for announcements on a session of its own and wakes the relay for each, until
// stop is called. Connecting and reconnecting happen in the background, with the relay polling
// meanwhile; once LISTEN holds, and after every reconnect, the relay is woken once more for the
// rows committed while nobody was listening.
func (r *Relay) listen() (stop func()) {
	if r.db.URL == "" {
		r.log.Warn("outbox relay: the database has no connection URL to LISTEN with; polling only")
		return func() {}
	}
	failing := false // pq calls the callback from one goroutine
	l := pq.NewListener(r.db.URL, listenMinReconnect, listenMaxReconnect, func(ev pq.ListenerEventType, err error) {
		switch ev {
		case pq.ListenerEventConnectionAttemptFailed:
			if !failing {
				r.log.Warn("outbox relay: the listening session cannot connect; polling until it does", "error", err)
			}
			failing = true
		case pq.ListenerEventDisconnected:
			r.listening.Store(false)
			r.log.Warn("outbox relay: the listening session was lost; polling until it reconnects", "error", err)
		case pq.ListenerEventConnected, pq.ListenerEventReconnected:
			if failing || ev == pq.ListenerEventReconnected {
				r.log.Info("outbox relay: listening again")
			}
			failing = false
		}
	})
	done := make(chan struct{})
	go func() {
		if err := l.Listen(notifyChannel); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.log.Warn("outbox relay: LISTEN failed; polling only", "error", err)
			}
			return
		}
		r.wakeUp()
		r.listening.Store(true)
		for {
			select {
			case <-done:
				return
			case n, ok := <-l.Notify: // nil after a reconnect: notifications may have been lost
				if !ok {
					return
				}
				r.wakeUp()
				if n == nil {
					r.listening.Store(true)
				}
			}
		}
	}()
	return func() {
		r.listening.Store(false)
		close(done)
		// Close waits for a connection attempt in progress: not on the relay's way out.
		go func() {
			_ = l.Close()
			for range l.Notify { // until pq's goroutine ends
			}
		}()
	}
}
