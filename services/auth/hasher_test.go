package auth_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestHasherBoundsConcurrentLogins: R-SEC-2 — 100 logins at once (each a hash: unknown
// usernames get the dummy hash) with 4 hashing slots and a queue of 8: never more than 4
// argon2id computations run at once (observed through the hasher's hook, which holds the
// first ones until the rest have been answered), the 8 queued wait their turn, and the other
// 88 are refused at once with UNAVAILABLE and retryAfter, without consuming a throttle attempt.
// A sign-up meanwhile is refused the same way.
func TestHasherBoundsConcurrentLogins(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		const slots, queue, logins = 4, 8, 100
		h := MustService(t, db, func(c *auth.Config) { c.MaxConcurrentHashes, c.MaxQueuedHashes = slots, queue })
		ctx := context.Background()
		var active, peak, hashed atomic.Int64
		release := make(chan struct{})
		auth.SetHashHook(h.svc, func(d int) {
			if d < 0 {
				active.Add(-1)
				return
			}
			n := active.Add(1)
			hashed.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			if n <= slots {
				<-release // a slow hash: the slot stays taken until the test lets go
			}
		})
		errc := make(chan error, logins)
		var wg sync.WaitGroup
		for i := range logins {
			wg.Go(func() {
				_, err := h.svc.Login(ctx, fmt.Sprintf("popug%d", i), "beak-print", fmt.Sprintf("198.51.100.%d", i))
				errc <- err
			})
		}
		guard := time.After(time.Minute) // fails a broken bound instead of hanging; not a timing check
		for i := range logins - slots - queue {
			select {
			case err := <-errc:
				e, ok := errs.As(err)
				if !ok || e.Code != errs.Unavailable || e.Meta["retryAfter"] == nil {
					t.Fatalf("answer %d while the hasher is full: %v, want UNAVAILABLE with retryAfter", i+1, err)
				}
			case <-guard:
				t.Fatalf("only %d answers while %d logins should have been refused at once (peak %d hashing)", i, logins-slots-queue, peak.Load())
			}
		}
		_, err := h.svc.SignUp(ctx, newAccount("latecomer", ""))
		if e, ok := errs.As(err); !ok || e.Code != errs.Unavailable || e.Meta["retryAfter"] == nil {
			t.Fatalf("sign-up while the hasher is full: %v, want UNAVAILABLE with retryAfter", err)
		}
		close(release)
		wg.Wait()
		close(errc)
		for err := range errc {
			if outcome(t, err) != "wrong" {
				t.Fatalf("a queued login: %v, want checked (wrong username)", err)
			}
		}
		if p := peak.Load(); p != slots {
			t.Fatalf("peak concurrent argon2id computations %d, want the bound %d", p, slots)
		}
		if n := hashed.Load(); n != slots+queue {
			t.Fatalf("%d hashes, want %d (the slots and the queue)", n, slots+queue)
		}
		// Refused logins gave their attempt back (or never took one): only the checked ones count.
		var counted int
		if err := db.SQL.QueryRow(`SELECT COALESCE(SUM(failures), 0) FROM login_limits WHERE key LIKE 'p:%'`).Scan(&counted); err != nil {
			t.Fatal(err)
		}
		if counted != slots+queue {
			t.Fatalf("%d attempts counted, want the %d that were checked", counted, slots+queue)
		}
		if _, err := h.svc.SignUp(ctx, newAccount("latecomer", "")); err != nil {
			t.Fatalf("sign-up once the hasher is free: %v", err)
		}
	})
}

// TestHasherQueueRespectsContext: R-SEC-2 — a call waiting in the hasher's queue gives up when
// its context ends, and its login attempt is given back.
func TestHasherQueueRespectsContext(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, "sqlite3"), func(c *auth.Config) { c.MaxConcurrentHashes, c.MaxQueuedHashes = 1, 4 })
	release := make(chan struct{})
	inside := make(chan struct{}, 2)
	auth.SetHashHook(h.svc, func(d int) {
		if d > 0 {
			inside <- struct{}{}
			<-release
		}
	})
	done := make(chan error, 1)
	go func() { _, err := h.svc.Login(context.Background(), "first", "beak-print", "192.0.2.1"); done <- err }()
	<-inside // the only slot is taken
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { _, err := h.svc.Login(ctx, "second", "beak-print", "192.0.2.2"); waiting <- err }()
	// The second login has counted its attempt, then waits in the hasher's queue.
	for auth.HashesWaiting(h.svc) == 0 {
		runtime.Gosched()
	}
	if n := h.mustCountWhere(t, "login_limits", "key = 'u:second' AND failures = 1"); n == 0 {
		t.Fatal("the waiting login has not counted its attempt")
	}
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("the waiting login: %v, want context.Canceled", err)
	}
	if n := h.mustCountWhere(t, "login_limits", "key LIKE '%second%'"); n != 0 {
		t.Fatalf("the cancelled login left %d throttle records", n)
	}
	close(release)
	if err := <-done; outcome(t, err) != "wrong" {
		t.Fatalf("the first login: %v", err)
	}
}

// BenchmarkConcurrentLogins measures the peak heap of 100 logins at once with OWASP's argon2id
// parameters (19 MiB each), with the hasher bounded as configured by default and, for
// comparison, with a slot for every login (docs/benchmarks.md).
func BenchmarkConcurrentLogins(b *testing.B) {
	for _, c := range []struct {
		name  string
		slots int
	}{{"unbounded", 100}, {"bounded", 0}} {
		b.Run(c.name, func(b *testing.B) {
			h := MustService(b, storagetest.MustOpen(b, "sqlite3"), func(cfg *auth.Config) {
				cfg.Argon2 = auth.DefaultArgon2
				cfg.MaxConcurrentHashes, cfg.MaxQueuedHashes = c.slots, 100
			})
			ctx := context.Background()
			var peakHeap uint64
			for n := range b.N {
				runtime.GC()
				stop := make(chan struct{})
				sampled := make(chan uint64)
				go func() { sampled <- sampleHeap(stop) }()
				var wg sync.WaitGroup
				for i := range 100 {
					wg.Go(func() {
						_, _ = h.svc.Login(ctx, fmt.Sprintf("p%d_%d", n, i), "beak-print", fmt.Sprintf("10.%d.%d.1", n%250, i))
					})
				}
				wg.Wait()
				close(stop)
				peakHeap = max(peakHeap, <-sampled)
			}
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeap returns the largest heap (bytes of live and unswept objects) seen until stop.
func sampleHeap(stop <-chan struct{}) uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		peak = max(peak, s[0].Value.Uint64())
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}
