package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// The crash tests re-execute the test binary as a helper process that commits events and then
// dies by SIGKILL at a chosen point; the parent then recovers on the same database.
const (
	helperScenarioEnv = "ATES_OUTBOX_CRASH_SCENARIO"
	helperDatabaseEnv = "ATES_OUTBOX_CRASH_DATABASE"
	helperEvents      = 25
	crashConsumer     = "crash-consumer"
	killMarker        = "helper: SIGKILL now"
)

// Crash points of the helper process.
const (
	// afterCommit: the state change and its events committed; no relay ran.
	afterCommit = "after-commit"
	// whilePublishing: a relay read the rows and is inside Publish; the broker never confirms.
	whilePublishing = "while-publishing"
	// afterPublish: the consumer applied the events, the relay has not marked them sent.
	afterPublish = "after-publish"
)

// R-EVT-4, R-EVT-5, R-OPS-5: killing the process between a committed change and its publication
// loses no event, and a publication whose marking was lost is applied once.
func TestKillBetweenCommitAndPublishLosesNothing(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects {
		for _, scenario := range []string{afterCommit, whilePublishing, afterPublish} {
			t.Run(d+"/"+scenario, func(t *testing.T) {
				t.Parallel()
				db, url := mustCrashDB(t, d)
				client := MustContextDB(t, db)

				out, err := runHelper(t, scenario, url)
				var exit *exec.ExitError
				if !errors.As(err, &exit) || !strings.Contains(string(out), killMarker) {
					t.Fatalf("helper did not kill itself: %v\n%s", err, out)
				}
				if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
					t.Fatalf("helper ended with %v, want SIGKILL\n%s", exit, out)
				}

				rows := mustRows(t, db)
				if len(rows) != helperEvents {
					t.Fatalf("the helper committed %d outbox rows, want %d\n%s", len(rows), helperEvents, out)
				}
				for _, r := range rows {
					if r.Sent {
						t.Fatalf("row %d marked sent before the crash", r.ID)
					}
				}
				appliedBefore := countWhere(t, db, "test_effects", entsql.EQ("consumer", crashConsumer))
				if want := map[bool]int{true: helperEvents, false: 0}[scenario == afterPublish]; appliedBefore != want {
					t.Fatalf("the helper applied %d events, want %d", appliedBefore, want)
				}

				// Recovery: a new relay and consumer on the same database.
				b := inproc.New()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				consumer := MustInbox(t, db, client, crashConsumer)
				sub, err := b.Subscribe(ctx, bus.Subscription{Queue: crashConsumer, Topics: []string{"account.*"}}, consumer.Handler())
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Stop()
				r, err := outbox.NewRelay(db, b, outbox.RelayOptions{
					Context: "crash", PollInterval: 10 * time.Millisecond, StandbyInterval: 50 * time.Millisecond,
					Logger: testLogger(t),
				})
				if err != nil {
					t.Fatal(err)
				}
				runRelay(t, r)
				eventually(t, 30*time.Second, "every row relayed", func() bool { return unsent(t, db) == 0 })

				for _, row := range rows {
					n := countWhere(t, db, "test_effects", entsql.And(entsql.EQ("consumer", crashConsumer), entsql.EQ("event_id", row.EventID)))
					if n != 1 {
						t.Errorf("event %s applied %d times, want exactly 1", row.EventID, n)
					}
				}
				wantNow := int64(helperEvents)
				if scenario == afterPublish {
					wantNow = 0 // every redelivery is a duplicate
				}
				if got := consumer.applied.Load(); got != wantNow {
					t.Errorf("applied %d events after recovery, want %d", got, wantNow)
				}
			})
		}
	}
}

func mustCrashDB(t *testing.T, d string) (*storage.DB, string) {
	t.Helper()
	switch d {
	case dialect.SQLite:
		path := filepath.Join(t.TempDir(), "auth.db")
		db, err := storage.OpenSQLite(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db, "sqlite://" + path
	default:
		url := storagetest.MustCreatePostgresDatabase(t)
		return storagetest.MustOpenPostgres(t, url), url
	}
}

func runHelper(t *testing.T, scenario, url string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperScenarioEnv+"="+scenario, helperDatabaseEnv+"="+url)
	return cmd.CombinedOutput()
}

// TestHelperProcess is the crashing process of TestKillBetweenCommitAndPublishLosesNothing; run
// on its own it skips.
func TestHelperProcess(t *testing.T) {
	scenario := os.Getenv(helperScenarioEnv)
	if scenario == "" {
		t.Skip("helper process of the crash tests")
	}
	ctx := context.Background()
	db, err := storage.OpenURL(ctx, os.Getenv(helperDatabaseEnv))
	if err != nil {
		t.Fatal(err)
	}
	client := authdb.NewClient(authdb.Driver(db.Driver()))
	MustAppend(t, client, MustWriter(t, db), MustRecords(t, helperEvents)...)

	opts := outbox.RelayOptions{Context: "crash-helper", PollInterval: 10 * time.Millisecond, Logger: testLogger(t)}
	switch scenario {
	case afterCommit:
		die()
	case whilePublishing:
		bt := &blockingTransport{Transport: inproc.New(), publishing: make(chan int, 1)}
		r, err := outbox.NewRelay(db, bt, opts)
		if err != nil {
			t.Fatal(err)
		}
		go r.Run(ctx) //nolint:errcheck // the process dies first
		if n := <-bt.publishing; n != helperEvents {
			t.Fatalf("relay publishing %d events, want %d", n, helperEvents)
		}
		die()
	case afterPublish:
		b := inproc.New()
		consumer := MustInbox(t, db, client, crashConsumer)
		if _, err := b.Subscribe(ctx, bus.Subscription{Queue: crashConsumer, Topics: []string{"account.*"}}, consumer.Handler()); err != nil {
			t.Fatal(err)
		}
		r, err := outbox.NewRelay(db, &dieAfterPublish{Transport: b}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("unknown scenario %q", scenario)
}

// die kills the process the hard way: no deferred calls, no cleanup, no graceful shutdown.
func die() {
	fmt.Println(killMarker)
	if err := syscall.Kill(os.Getpid(), syscall.SIGKILL); err != nil {
		panic(err)
	}
	select {}
}

// blockingTransport is a broker that never confirms: Publish reports the batch and blocks.
type blockingTransport struct {
	bus.Transport
	publishing chan int
}

func (b *blockingTransport) Publish(ctx context.Context, msgs ...bus.Message) error {
	b.publishing <- len(msgs)
	<-ctx.Done()
	return ctx.Err()
}

// dieAfterPublish publishes for real, then kills the process before the relay marks anything.
type dieAfterPublish struct{ bus.Transport }

func (d *dieAfterPublish) Publish(ctx context.Context, msgs ...bus.Message) error {
	if err := d.Transport.Publish(ctx, msgs...); err != nil {
		return err
	}
	die()
	return nil
}
