package accounting_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// Benchmarks of the end-of-day close (R-ACC-8): one close of many positive accounts, the
// database step only (payout entries, payments, email jobs and their events, batch by batch);
// sending the emails is the mailer's, later. Setup — a fresh database and the accounts,
// inserted straight into it — is outside the timer. Reported: seconds per close, email jobs
// queued per second, and the process's peak Go memory while the close ran.
//
//	go test ./services/accounting -run '^$' -bench 'BenchmarkCloseDay' -benchtime 1x -count 3

// BenchmarkCloseDay100k closes a day of 100 000 positive accounts on PostgreSQL; target ≤ 5 s
// and ≤ 200 MiB. workers is how many payout batches are in flight at once (the default is
// accounting.CloseWorkers).
func BenchmarkCloseDay100k(b *testing.B) {
	for _, workers := range []int{accounting.CloseWorkers, 1, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			benchClose(b, dialect.Postgres, 100_000, workers)
		})
	}
}

// BenchmarkCloseDay10kSQLite closes a day of 10 000 positive accounts on SQLite (the embedded
// default), one batch at a time.
func BenchmarkCloseDay10kSQLite(b *testing.B) { benchClose(b, dialect.SQLite, 10_000, 1) }

func benchClose(b *testing.B, d string, accounts, workers int) {
	ctx := context.Background()
	var elapsed, goCPU, pgCPU time.Duration
	var peak memPeak
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := MustService(b, storagetest.MustOpen(b, d))
		accounting.SetCloseWorkers(h.svc, workers)
		mustBenchAccounts(b, h, accounts)
		runtime.GC()
		stop := peak.sample()
		goCPU0, pgCPU0 := storagetest.ProcessCPU(b), storagetest.BackendCPU(b, h.db)
		b.StartTimer()
		t0 := time.Now()
		res, err := h.svc.CloseNow(ctx, actor(identity.Admin))
		elapsed += time.Since(t0)
		b.StopTimer()
		goCPU += storagetest.ProcessCPU(b) - goCPU0
		pgCPU += storagetest.BackendCPU(b, h.db).Since(pgCPU0)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.PaidAccounts != accounts {
			b.Fatalf("the close paid %d accounts, want %d", res.PaidAccounts, accounts)
		}
		if n := h.mustCount(b, `SELECT COUNT(*) FROM payments WHERE NOT email_sent AND email_next_attempt_at IS NOT NULL`); n != accounts {
			b.Fatalf("%d email jobs queued, want %d", n, accounts)
		}
	}
	secs := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(secs, "s/close")
	b.ReportMetric(float64(accounts)/secs, "jobs/s")
	b.ReportMetric(float64(peak.heap)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak.sys)/(1<<20), "peak-sys-MiB")
	// CPU seconds spent, whatever else the machine runs: this process, and the PostgreSQL
	// backends serving the test's database (0 on SQLite, which runs inside this process).
	b.ReportMetric(goCPU.Seconds()/float64(b.N), "go-cpu-s/close")
	b.ReportMetric(pgCPU.Seconds()/float64(b.N), "pg-cpu-s/close")
	b.ReportMetric(0, "ns/op") // one close per op: s/close says it
}

// memPeak is the highest Go memory seen by a sampler: heap in use, and memory obtained from the
// OS and not returned (≈ the Go part of the resident set).
type memPeak struct {
	mu        sync.Mutex
	heap, sys uint64
}

// sample reads the memory statistics every 5 ms until the returned stop is called.
func (p *memPeak) sample() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			p.mu.Lock()
			p.heap = max(p.heap, m.HeapInuse)
			p.sys = max(p.sys, m.Sys-m.HeapReleased)
			p.mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// mustBenchAccounts inserts n accounts with positive balances straight into accounts, 1 000
// rows per INSERT.
func mustBenchAccounts(tb testing.TB, h *harness, n int) {
	tb.Helper()
	ctx := context.Background()
	now := h.clock.Now().UTC()
	const chunk = 1000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		var q strings.Builder
		q.WriteString(`INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, created_at) VALUES `)
		args := make([]any, 0, 5*(hi-lo))
		for i := lo; i < hi; i++ {
			if i > lo {
				q.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&q, "($%d, $%d, $%d, 'Bench popug', 'WORKER', true, 1, $%d, $%d)", k+1, k+2, k+3, k+4, k+5)
			name := fmt.Sprintf("bench_%d", i)
			args = append(args, uuid.NewString(), name, name+"@uberpopug.com", int64(100+(i*7919)%10000), now)
		}
		if _, err := h.db.SQL.ExecContext(ctx, h.q(q.String()), args...); err != nil {
			tb.Fatalf("inserting accounts: %v", err)
		}
	}
}
