package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// fault is one fault the suite injects and heals, with the load running.
type fault struct {
	name string
	// gw is the gateway through which the recovery shows (its pushes flow again); -1: any.
	gw int
	// before runs before the fault (a precondition, not part of it).
	before func(t *testing.T, ctx context.Context) error
	inject func(t *testing.T, ctx context.Context) error
	hold   time.Duration // how long the fault lasts before heal
	heal   func(t *testing.T, ctx context.Context) error
	// probe, when set, tells when what the fault stopped flows again, after healed: for a
	// context no push depends on. Otherwise that is the first push, through gw, of a change
	// made after the fault.
	probe func(ctx context.Context, healed time.Time) (time.Time, error)
	// bound is how soon after healing things must flow again, when the specification says.
	bound time.Duration
}

// faultRun is what happened to one fault: when it began and ended, when pushes and requests
// flowed again, and the window the report counts pushes, RESYNCs and errors in.
type faultRun struct {
	Name       string
	Gateway    int       // the gateway whose pushes the fault concerns; -1: any
	Start, End time.Time // injected; healed
	Recovered  time.Time // first push, through the fault's gateway, of a change made after End (or the probe's answer)
	// Bound is how soon after End things must flow again, when the specification says
	// (R-REL-3); zero: within the suite's recovery bound.
	Bound time.Duration
	Until time.Time // the next fault's start (or the end of the load)
	Err   string
}

// recovery bounds how long the suite waits for pushes to flow again after a fault.
const recovery = 60 * time.Second

// brokerRecovery is how soon after the broker's return events must flow again (R-REL-3).
const brokerRecovery = 5 * time.Second

// runFault injects, holds and heals a fault, then waits until pushes of new changes flow again.
func runFault(t *testing.T, ctx context.Context, rec *recorder, f fault) *faultRun {
	t.Helper()
	r := &faultRun{Name: f.name, Gateway: f.gw, Bound: f.bound}
	if f.before != nil {
		if err := f.before(t, ctx); err != nil {
			r.Err = err.Error()
		}
	}
	rec.note("fault %q: start", f.name)
	r.Start = time.Now()
	if err := f.inject(t, ctx); err != nil {
		r.Err = err.Error()
	}
	sleep(ctx, f.hold)
	if f.heal != nil {
		if err := f.heal(t, ctx); err != nil {
			r.Err = err.Error()
		}
	}
	r.End = time.Now()
	rec.note("fault %q: healed", f.name)
	if f.probe != nil {
		pctx, cancel := context.WithTimeout(ctx, recovery)
		at, err := f.probe(pctx, r.End)
		cancel()
		if err != nil && r.Err == "" {
			r.Err = err.Error()
		}
		r.Recovered = at
	} else if at, ok := rec.waitPush(ctx, r.End, f.gw, recovery); ok {
		r.Recovered = at
	} else if r.Err == "" {
		r.Err = fmt.Sprintf("no push of a new change within %v", recovery)
	}
	t.Logf("fault %-42s lasted %5.1fs, flowing again after %s", f.name, r.End.Sub(r.Start).Seconds(), since(r.End, r.Recovered))
	return r
}

// since formats the time from a to b, or "—" when b never came.
func since(a, b time.Time) string {
	if b.IsZero() {
		return "—"
	}
	return fmt.Sprintf("%.1fs", b.Sub(a).Seconds())
}

// killRestart is a fault that SIGKILLs processes and starts them again after hold.
func (s *stack) killRestart(name string, gw int, hold time.Duration, names ...string) fault {
	return fault{
		name: name, gw: gw, hold: hold,
		inject: func(*testing.T, context.Context) error {
			for _, n := range names {
				s.procs[n].kill()
			}
			return nil
		},
		heal: func(_ *testing.T, ctx context.Context) error {
			for _, n := range names {
				if err := s.procs[n].start(ctx); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// faults is the run's sequence of faults (R-REL-1…4), one after another.
func (s *stack) faults(p *population, closes *[]*mutation) []fault {
	emailsSent := func(_ *testing.T, ctx context.Context) error { return s.waitEmailsSent(ctx, 30*time.Second) }
	accKill := func(name, worker string) fault {
		f := s.killRestart(name, -1, 3*time.Second, worker)
		f.before = emailsSent // a mailer killed between sending and recording may send twice, as R-ACC-8 allows
		return f
	}
	analyticsKill := s.killRestart("SIGKILL worker analytics", -1, 3*time.Second, workerAn)
	analyticsKill.probe = s.consumedAfter("analytics")
	authKill := s.killRestart("SIGKILL worker auth", -1, 3*time.Second, workerAuth)
	authKill.probe = s.accountArrives(p.admin)
	return []fault{
		s.killRestart("SIGKILL worker tasks", -1, 3*time.Second, workerTasks),
		accKill("SIGKILL worker accounting (replica 1)", workerAcc1),
		accKill("SIGKILL worker accounting (replica 2)", workerAcc2),
		analyticsKill,
		authKill,
		{
			name: "gateway 1 cut off from the broker", gw: 0, hold: 8 * time.Second,
			inject: func(*testing.T, context.Context) error { s.proxies[0].Drop(time.Hour); return nil },
			heal:   func(*testing.T, context.Context) error { s.proxies[0].Allow(); return nil },
		},
		{
			// What a cut longer than the feeds' expiry, or a broker that lost them, leaves.
			name: "gateway 2 cut off, its feed queues lost", gw: 1, hold: 6 * time.Second,
			inject: func(*testing.T, context.Context) error {
				s.proxies[1].Drop(time.Hour)
				return s.deleteFeeds(1)
			},
			heal: func(*testing.T, context.Context) error { s.proxies[1].Allow(); return nil },
		},
		s.killRestart("SIGKILL gateway 1", 0, 4*time.Second, gateway1),
		s.killRestart("SIGKILL gateway 2", 1, 4*time.Second, gateway2),
		{
			name: "broker stop, start", gw: -1, hold: 3 * time.Second, bound: brokerRecovery,
			inject: func(t *testing.T, _ context.Context) error { s.node.Stop(t); return nil },
			heal:   func(t *testing.T, _ context.Context) error { s.node.Start(t); return nil },
		},
		{
			name: "broker kill -9, start", gw: -1, hold: 2 * time.Second, bound: brokerRecovery,
			inject: func(t *testing.T, _ context.Context) error { s.node.Kill(t); return nil },
			heal:   func(t *testing.T, _ context.Context) error { s.node.Start(t); return nil },
		},
		{
			name: "database restart -m immediate", gw: -1,
			inject: func(t *testing.T, _ context.Context) error { s.pg.RestartImmediate(t); return nil },
		},
		{
			name: "closeBillingDay, accounting workers down", gw: -1, hold: 3 * time.Second, before: emailsSent,
			inject: func(_ *testing.T, ctx context.Context) error {
				s.procs[workerAcc1].kill()
				s.procs[workerAcc2].kill()
				m, ok := p.accountant.closeDay(ctx)
				*closes = append(*closes, m)
				if !ok {
					return fmt.Errorf("the close was not acknowledged: %s %s", m.Code, m.Message)
				}
				return nil
			},
			heal: func(_ *testing.T, ctx context.Context) error {
				if err := s.procs[workerAcc1].start(ctx); err != nil {
					return err
				}
				return s.procs[workerAcc2].start(ctx)
			},
		},
	}
}

// consumedAfter is a probe: when the context's consumer next applied an event.
func (s *stack) consumedAfter(consumer string) func(ctx context.Context, healed time.Time) (time.Time, error) {
	return func(ctx context.Context, healed time.Time) (time.Time, error) {
		for {
			var at sql.NullTime
			err := s.dbs[consumer].QueryRowContext(ctx, `SELECT min(processed_at) FROM processed_events WHERE consumer = $1 AND processed_at > $2`,
				consumer, healed.UTC()).Scan(&at)
			if err == nil && at.Valid {
				return at.Time, nil
			}
			if !sleep(ctx, 50*time.Millisecond) {
				return time.Time{}, fmt.Errorf("%s applied no event after the fault", consumer)
			}
		}
	}
}

// accountArrives is a probe: the admin creates a manager (account.created, from auth's
// outbox; a manager is never assigned tasks, so the load is unchanged) and the probe tells
// when accounting has opened the new account's billing account (R-ACC-5).
func (s *stack) accountArrives(admin *actor) func(ctx context.Context, healed time.Time) (time.Time, error) {
	return func(ctx context.Context, healed time.Time) (time.Time, error) {
		name := fmt.Sprintf("probe%d", healed.UnixMilli()%1_000_000)
		_, data := admin.mutate(ctx, "createAccount", `mutation($in: CreateAccountInput!) { createAccount(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"username": name, "password": name + "-beak-print", "fullName": "Probe " + name,
				"email": name + "@uberpopug.local", "role": "MANAGER"}}, nil)
		var a struct{ ID string }
		if data == nil || decode(data, "createAccount", &a) != nil {
			return time.Time{}, fmt.Errorf("the admin could not create %s", name)
		}
		for {
			var n int
			err := s.dbs["accounting"].QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE public_id = $1`, a.ID).Scan(&n)
			if err == nil && n == 1 {
				return time.Now(), nil
			}
			if !sleep(ctx, 20*time.Millisecond) {
				return time.Time{}, fmt.Errorf("accounting did not hear of the new account %s", name)
			}
		}
	}
}

// deleteFeeds deletes the gateway's feed queues on the broker, as their expiry would.
func (s *stack) deleteFeeds(gw int) error {
	inst, err := s.instance(gw)
	if err != nil {
		return err
	}
	conn, err := amqp.Dial(s.node.URL())
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, purpose := range []string{"balances", "tasks", "accounts"} {
		if _, err := ch.QueueDelete("feed.gateway."+inst+"."+purpose, false, false, false); err != nil {
			return fmt.Errorf("deleting the %s feed: %w", purpose, err)
		}
	}
	return nil
}

// waitEmailsSent waits until every payment's email was sent.
func (s *stack) waitEmailsSent(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var pending int
		err := s.dbs["accounting"].QueryRowContext(ctx, `SELECT count(*) FROM payments WHERE NOT email_sent`).Scan(&pending)
		if err == nil && pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d payment emails still unsent after %v (%v)", pending, timeout, err)
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}
