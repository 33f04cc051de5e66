package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Settings of a run, from the environment `make chaos` passes through.
const (
	defaultPopugs = 24
	defaultPace   = 1500 * time.Millisecond // a popug acts about this often
	shufflePace   = 15 * time.Second        // a manager shuffles about this often
	settleBound   = 90 * time.Second        // how long the system may take to settle after the load
	budget        = 9 * time.Minute         // the whole run, bounded below go test's timeout
)

// TestChaos is the fault suite (R-REL-1…4): the production topology under load, a sequence of
// faults with recovery in between, then every invariant checked. It runs only with
// ATES_CHAOS=1 (make chaos).
func TestChaos(t *testing.T) {
	if os.Getenv("ATES_CHAOS") == "" {
		t.Skip("the fault suite: run it with make chaos (ATES_CHAOS=1)")
	}
	deadline := time.Now().Add(budget)
	if d, ok := t.Deadline(); ok && d.Add(-45*time.Second).Before(deadline) {
		deadline = d.Add(-45 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	dir := os.Getenv("ATES_CHAOS_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ates-chaos-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("ATES_CHAOS_KEEP") != "" {
			t.Logf("the run's logs (a file per process, clients.jsonl, report.txt): %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	popugs := envInt(t, "ATES_CHAOS_POPUGS", defaultPopugs)
	pace := defaultPace
	if v := os.Getenv("ATES_CHAOS_PACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ATES_CHAOS_PACE=%q: %v", v, err)
		}
		pace = d
	}

	began := time.Now()
	s := startStack(t, ctx, dir)
	t.Logf("stack up in %.1fs: %s, %s", time.Since(began).Seconds(), s.gateways[0], s.gateways[1])
	rec, err := newRecorder(filepath.Join(dir, "clients.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.close()
	a := newAPI(s.gateways)
	pop := populate(t, ctx, a, rec, popugs)

	subCtx, stopSubs := context.WithCancel(ctx)
	var subs sync.WaitGroup
	defer func() { stopSubs(); subs.Wait() }()
	for _, so := range sockets(pop) {
		subs.Go(func() { so.run(subCtx, rec, s.gateways) })
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	defer func() { stopLoad(); load.Wait() }()
	for _, p := range pop.popugs {
		load.Go(func() { p.popugLoop(loadCtx, pace) })
	}
	for _, m := range pop.managers {
		load.Go(func() { m.managerLoop(loadCtx, shufflePace) })
	}
	loadStart := time.Now()
	var closes []*mutation
	closeDay := func() {
		m, ok := pop.accountant.closeDay(ctx)
		closes = append(closes, m)
		if !ok {
			t.Errorf("closeBillingDay was not acknowledged: %s %s", m.Code, m.Message)
		}
	}
	sleep(ctx, 8*time.Second) // tasks to complete, balances to pay
	closeDay()
	var runs []*faultRun
	for i, f := range s.faults(pop, &closes) {
		if ctx.Err() != nil {
			t.Fatalf("out of time before %q", f.name)
		}
		if i == 7 {
			closeDay()
		}
		runs = append(runs, runFault(t, ctx, rec, f))
		sleep(ctx, 2*time.Second)
	}
	closeDay()
	sleep(ctx, 3*time.Second)
	stopLoad()
	load.Wait()
	loadEnd := time.Now()
	t.Logf("load over after %.0fs; settling", loadEnd.Sub(loadStart).Seconds())

	r := settle(t, ctx, s, rec, pop)
	c := check(r)
	checkRecoveries(c, runs)
	stopSubs()
	subs.Wait()
	var extra []string
	for _, bad := range s.stopAll() {
		c.add(invStop, time.Time{}, "%s", bad)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "aTES fault suite: %d popugs, 2 managers, an accountant; 2 gateways, workers auth, tasks, accounting ×2, analytics; run of %.0fs\n\n",
		popugs, time.Since(began).Seconds())
	report(&out, rec, c, loadStart, loadEnd, runs, extra)
	fmt.Print("\n" + out.String())
	_ = os.WriteFile(filepath.Join(dir, "report.txt"), out.Bytes(), 0o600)
	for _, f := range runs {
		if f.Err != "" {
			t.Errorf("fault %q: %s", f.Name, f.Err)
		}
	}
	if len(c.list) > 0 {
		t.Errorf("%d violations of the invariants (report above)", len(c.list))
	}
}

// settle waits, with the load stopped and the subscribers still connected, until the events
// have flowed: outboxes empty, every event consumed, every payment emailed, and the live
// subscriptions caught up — or until settleBound, when the checks say what is missing. It
// returns the run to check.
func settle(t *testing.T, ctx context.Context, s *stack, rec *recorder, pop *population) *run {
	t.Helper()
	deadline := time.Now().Add(settleBound)
	began := time.Now()
	last, stable := -1, 0
	for {
		r, err := collect(ctx, s, rec, pop)
		if err != nil {
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Fatalf("reading the databases: %v", err)
			}
			sleep(ctx, time.Second)
			continue
		}
		c := check(r)
		moving := 0
		for _, inv := range []string{invOutbox, invConsumed, invEmail, invAnalytics, invBalPush, invBoardPush} {
			moving += c.count(inv)
		}
		if moving == last {
			stable++
		} else {
			stable = 0
		}
		last = moving
		// Settled: nothing is on its way; or what is missing has stopped changing for a while
		// (then it is missing for good, and the checks report it).
		if moving == 0 || (stable >= 5 && c.count(invOutbox)+c.count(invConsumed) == 0) || time.Now().After(deadline) {
			t.Logf("settled in %.1fs", time.Since(began).Seconds())
			return r
		}
		sleep(ctx, time.Second)
	}
}

// collect reads everything the checks need.
func collect(ctx context.Context, s *stack, rec *recorder, pop *population) (*run, error) {
	sn, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	day := today()
	sums, earnings, err := readFigures(ctx, pop.admin, sn, day)
	if err != nil {
		return nil, err
	}
	rec.mu.Lock()
	r := &run{sn: sn, mutations: append([]*mutation(nil), rec.mutations...), answers: append([]answer(nil), rec.answers...),
		mails: s.mail.Messages(), summaries: sums, earnings: earnings, today: day}
	for _, se := range rec.sessions {
		cp := *se
		cp.Balances = append([]balancePush(nil), se.Balances...)
		cp.Board = append([]boardPush(nil), se.Board...)
		r.sessions = append(r.sessions, &cp)
	}
	rec.mu.Unlock()
	return r, nil
}

// envInt reads a positive number from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}
