package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// crossProcess is a PostgreSQL context database with an active relay that polls once an hour,
// and a producer on a pool of its own, as another process (a gateway) would have: the producer
// commits outbox rows and calls its own relay's Notify, never the active relay's.
type crossProcess struct {
	db        *storage.DB // the active relay's pool
	relay     *outbox.Relay
	got       *collector
	producer  *authdb.Client
	pdb       *storage.DB   // the producer's pool
	announcer *outbox.Relay // the producer process's relay, never run
	w         *outbox.Writer
}

func mustCrossProcess(t *testing.T, name string) *crossProcess {
	t.Helper()
	url := storagetest.MustCreatePostgresDatabase(t)
	db := storagetest.MustOpenPostgres(t, url)
	MustContextDB(t, db)
	b := inproc.New()
	cp := &crossProcess{db: db, got: MustCollect(t, context.Background(), b, "#"), w: MustWriter(t, db)}
	var err error
	cp.relay, err = outbox.NewRelay(db, b, outbox.RelayOptions{Context: name, PollInterval: time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, cp.relay)

	cp.pdb = storagetest.MustOpenPostgres(t, url)
	cp.producer = authdb.NewClient(authdb.Driver(cp.pdb.Driver()))
	if cp.announcer, err = outbox.NewRelay(cp.pdb, inproc.New(), outbox.RelayOptions{Context: name + "-producer", Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.announcer.Close)
	eventually(t, 10*time.Second, "relay active", cp.relay.Active)
	cp.mustListener(t, 0)
	settled(t, cp.relay, 0) // idle now, for an hour unless woken
	return cp
}

// commit appends one event on the producer's pool and calls the producer's Notify.
func (cp *crossProcess) commit(t *testing.T) {
	t.Helper()
	MustAppend(t, cp.producer, cp.w, MustRecords(t, 1)...)
	cp.announcer.Notify()
}

// mustListener waits for the relay's LISTEN session (other than the one with pid not) and
// returns its pid.
func (cp *crossProcess) mustListener(t *testing.T, not int) (pid int) {
	t.Helper()
	eventually(t, 10*time.Second, "the relay's LISTEN session", func() bool {
		err := cp.db.SQL.QueryRow(`SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> $1`, not).Scan(&pid)
		return err == nil
	})
	return pid
}

// R-EVT-4, R-ACC-10: a commit of another process reaches the active relay through PostgreSQL's
// LISTEN/NOTIFY: nothing calls the relay's Notify and it polls once an hour, yet every event
// is published.
func TestRelayWokenByAnotherProcessOnPostgres(t *testing.T) {
	t.Parallel()
	cp := mustCrossProcess(t, "cross-process")
	for i := range 3 {
		cp.commit(t)
		cp.got.waitFor(t, i+1, 10*time.Second)
	}
	eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, cp.db) == 0 })
}

// R-EVT-4, R-ACC-10: a commit is announced at once even while the producer's requests hold
// every connection of its pool (a backlog of requests): the announcements have a connection of
// their own.
func TestAnnouncementsDoNotWaitForThePool(t *testing.T) {
	t.Parallel()
	cp := mustCrossProcess(t, "announce-busy-pool")
	cp.commit(t) // the announcer's connection is open from here on
	cp.got.waitFor(t, 1, 10*time.Second)

	MustAppend(t, cp.producer, cp.w, MustRecords(t, 1)...)
	storagetest.HoldPool(t, cp.pdb)
	cp.announcer.Notify()
	cp.got.waitFor(t, 2, 4*time.Second) // within announceTimeout (5 s): not a retry after one
}

// R-EVT-4: when the database ends the relay's listening session, the relay listens again on a
// new one, and finds the commits announced while nobody listened.
func TestRelayListensAgainAfterLosingTheSession(t *testing.T) {
	t.Parallel()
	cp := mustCrossProcess(t, "listen-again")
	cp.commit(t)
	cp.got.waitFor(t, 1, 10*time.Second)

	pid := cp.mustListener(t, 0)
	var killed bool
	if err := cp.db.SQL.QueryRow("SELECT pg_terminate_backend($1)", pid).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	cp.commit(t) // most likely announced to nobody: the reconnect wakes the relay for it
	cp.got.waitFor(t, 2, 30*time.Second)

	cp.mustListener(t, pid) // a new session
	for i := range 2 {
		cp.commit(t)
		cp.got.waitFor(t, 3+i, 10*time.Second)
	}
	if !cp.relay.Active() {
		t.Error("the relay gave up its lock over the lost listening session")
	}
}

// R-EVT-4: announcements are spaced: a producer calling Notify every 50 µs for 200 ms sends at
// most one announcement per AnnounceSpacing (each a round trip and a commit under PostgreSQL's
// cluster-wide notify lock), and the commit made last is still announced and published.
func TestAnnouncementsAreSpaced(t *testing.T) {
	t.Parallel()
	cp := mustCrossProcess(t, "announce-spaced")
	cp.commit(t)
	cp.got.waitFor(t, 1, 10*time.Second)
	before := outbox.Announced("announce-spaced-producer")
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond {
		cp.announcer.Notify()
		time.Sleep(50 * time.Microsecond)
	}
	cp.commit(t)
	elapsed := time.Since(start)
	cp.got.waitFor(t, 2, 10*time.Second)
	cp.announcer.Close() // waits for an announcement in flight and sends no more: the count is final
	sent := outbox.Announced("announce-spaced-producer") - before
	if most := int(elapsed/outbox.AnnounceSpacing) + 2; sent > most {
		t.Errorf("%d announcements in %v, want at most %d (one per %v)", sent, elapsed.Round(time.Millisecond), most, outbox.AnnounceSpacing)
	}
	if sent < 2 {
		t.Errorf("%d announcements in %v, want several", sent, elapsed.Round(time.Millisecond))
	}
}
