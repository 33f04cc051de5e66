package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus/rabbitmq"
)

func init() {
	register("latency", command{
		summary: "completeTask → REWARD push latency of the live balance, with CPU by process and stages",
		run:     runLatency,
	})
}

// latencyOptions are the latency command's flags.
type latencyOptions struct {
	servers
	completions, rate, popugs, warmup int
	mode                              string
	stages, statements                bool
	series, cpuProfile                string
}

// runLatency measures how long after completeTask returns the completing popug's subscriber
// receives the REWARD push (R-ACC-10): p50 and p99 over the completions started at a steady
// rate, on the embedded default and on PostgreSQL + RabbitMQ (a gateway and a worker). The
// path: tasks commit → tasks relay → bus → accounting consumer commit → accounting relay → bus →
// the gateway's private feed → hub → WebSocket.
func runLatency(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	fs.SetOutput(out)
	var o latencyOptions
	o.servers.flags(fs)
	fs.IntVar(&o.completions, "completions", 500, "measured completions")
	fs.IntVar(&o.rate, "rate", 50, "completions started per second (up to 256 in flight)")
	fs.IntVar(&o.popugs, "popugs", 1, "workers sharing the tasks, each following their own balance on a socket of their own")
	fs.IntVar(&o.warmup, "warmup", -1, "unmeasured completions run at the same rate right before the measured ones (default: two seconds' worth; 0 measures from the process's first completion)")
	fs.StringVar(&o.mode, "mode", "both", "embedded (SQLite, in-process bus), postgres (gateway + worker on PostgreSQL and RabbitMQ) or both")
	fs.BoolVar(&o.stages, "stages", false, "split the latency into its stages on RabbitMQ with a tap queue bound to every event (a consumer aTES does not have: as many deliveries again as analytics gets, each decoded here)")
	fs.BoolVar(&o.statements, "statements", false, "print the statements that took the most time (pg_stat_statements; the server must load the module)")
	fs.StringVar(&o.series, "series", "", "write each measured completion's send time, response time and push latency (ms) to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the CPU profile of the gateway process over the measured completions to FILE-<command>.pprof (embedded or gateway; the worker serves no HTTP to ask)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.completions <= 0 || o.rate <= 0 || o.popugs <= 0 {
		return errors.New("-completions, -rate and -popugs must be positive")
	}
	if o.warmup < 0 {
		o.warmup = 2 * o.rate
	}
	if o.mode != "both" && o.mode != "embedded" && o.mode != "postgres" {
		return fmt.Errorf("-mode %q: want embedded, postgres or both", o.mode)
	}
	dir, err := os.MkdirTemp("", "atesbench-latency-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := o.binary(ctx, dir, out)
	if err != nil {
		return err
	}
	if o.mode != "postgres" {
		fmt.Fprintln(out, "== embedded (SQLite, in-process bus)")
		gw, err := startAtes(ctx, bin, embeddedEnviron(subdir(dir, "embedded")))
		if err != nil {
			return err
		}
		err = measureLatency(ctx, o, []*atesProcess{gw}, nil, nil, out)
		if err := errors.Join(err, gw.stop()); err != nil {
			return err
		}
	}
	if o.mode != "embedded" {
		fmt.Fprintln(out, "== postgres+rabbitmq (gateway + worker)")
		if err := latencyOnProduction(ctx, o, bin, subdir(dir, "production"), out); err != nil {
			return err
		}
	}
	return nil
}

func subdir(dir, name string) string {
	p := dir + string(os.PathSeparator) + name
	_ = os.MkdirAll(p, 0o755)
	return p
}

func latencyOnProduction(ctx context.Context, o latencyOptions, bin, dir string, out io.Writer) (err error) {
	env, err := newProduction(ctx, &o.servers, dir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.remove()) }()
	gw, err := startAtes(ctx, bin, env.Environ, "gateway")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, gw.stop()) }()
	worker, err := startAtes(ctx, bin, env.Environ, "worker")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, worker.stop()) }()
	var tap *brokerTap
	if o.stages {
		if tap, err = tapBroker(o.amqp, env.Name); err != nil {
			return err
		}
		defer tap.close()
	}
	var stats *statementStats
	if o.statements {
		stats = statementStatsOf(o.postgres, env.Name, out)
		defer stats.close()
	}
	return measureLatency(ctx, o, []*atesProcess{gw, worker}, tap, stats, out)
}

// statementStats reads pg_stat_statements for the databases of one run (named prefix_*). Nil
// (and every method a no-op) where the server does not load the module.
type statementStats struct {
	db     *sql.DB
	prefix string
}

func statementStatsOf(dsn, prefix string, out io.Writer) *statementStats {
	db, err := sql.Open("postgres", dsn)
	if err == nil {
		_, err = db.Exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	}
	if err == nil {
		_, err = db.Exec("SELECT count(*) FROM pg_stat_statements")
	}
	if err != nil {
		fmt.Fprintf(out, "no statement statistics (shared_preload_libraries = 'pg_stat_statements'?): %v\n", err)
		if db != nil {
			db.Close()
		}
		return nil
	}
	return &statementStats{db: db, prefix: prefix}
}

func (s *statementStats) close() {
	if s != nil {
		s.db.Close()
	}
}

func (s *statementStats) reset() error {
	if s == nil {
		return nil
	}
	_, err := s.db.Exec("SELECT pg_stat_statements_reset()")
	return err
}

// print prints the 20 statements of the run's databases that took the most time, per completion.
func (s *statementStats) print(out io.Writer, n int) error {
	if s == nil {
		return nil
	}
	rows, err := s.db.Query(`SELECT substr(d.datname, length($1) + 2), calls, total_exec_time, rows, wal_records,
	left(regexp_replace(query, '\s+', ' ', 'g'), 100)
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname LIKE $1 || '\_%'
ORDER BY total_exec_time DESC LIMIT 20`, s.prefix)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "statements by time spent executing, per completion (%d completions):\n  %-10s %8s %10s %8s %8s  %s\n", n, "database", "calls", "time", "rows", "WAL rec", "statement")
	for rows.Next() {
		var (
			db, query             string
			calls, count, walRecs int64
			ms                    float64
		)
		if err := rows.Scan(&db, &calls, &ms, &count, &walRecs, &query); err != nil {
			return err
		}
		per := float64(n)
		fmt.Fprintf(&b, "  %-10s %8.3f %8.0fµs %8.2f %8.2f  %s\n", db, float64(calls)/per, ms*1000/per, float64(count)/per, float64(walRecs)/per, query)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// brokerTap notes when each task's task.completed and REWARD balance.changed events pass
// through the exchange, to split the push latency into its stages.
type brokerTap struct {
	conn               *amqp.Connection
	mu                 sync.Mutex
	completed, rewards map[string]time.Time
}

func tapBroker(amqpURL, exchange string) (*brokerTap, error) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	var q amqp.Queue
	if err == nil {
		q, err = ch.QueueDeclare("", false, true, true, false, nil)
	}
	if err == nil {
		err = ch.QueueBind(q.Name, "#", exchange, false, nil)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(q.Name, "", true, true, false, false, nil)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	tap := &brokerTap{conn: conn, completed: map[string]time.Time{}, rewards: map[string]time.Time{}}
	go func() {
		for d := range deliveries {
			at := time.Now()
			msgs, err := rabbitmq.Messages(d) // one AMQP message may carry several events (a CloudEvents batch)
			if err != nil {
				continue
			}
			for _, m := range msgs {
				var e struct {
					Data struct{ TaskID, Type string }
				}
				if json.Unmarshal(m.Body, &e) != nil {
					continue
				}
				tap.mu.Lock()
				switch {
				case m.Topic == "task.completed":
					tap.completed[e.Data.TaskID] = at
				case m.Topic == "balance.changed" && e.Data.Type == "REWARD":
					tap.rewards[e.Data.TaskID] = at
				}
				tap.mu.Unlock()
			}
		}
	}()
	return tap, nil
}

func (t *brokerTap) close() { t.conn.Close() }

// measureLatency runs the measurement against the gateway procs[0] (and the other processes of
// the run, whose CPU and profiles it reports too).
func measureLatency(ctx context.Context, o latencyOptions, procs []*atesProcess, tap *brokerTap, stats *statementStats, out io.Writer) error {
	base := procs[0].base
	n, rate, warm := o.completions, o.rate, o.warmup
	boss, err := login(ctx, base, "boss", "boss-beak-print")
	if err != nil {
		return err
	}
	mgr, err := createPopug(ctx, base, boss.Token, "max", "MANAGER")
	if err != nil {
		return err
	}
	// The workers, each following their own balance on a socket of their own.
	tokens := map[string]string{}       // by account id
	pending := map[string]*balanceSub{} // by account id: no push seen yet
	var subs []*balanceSub
	for i := range o.popugs {
		name := "kiwi"
		if i > 0 {
			name = fmt.Sprintf("kiwi%d", i)
		}
		p, err := signUp(ctx, base, name)
		if err != nil {
			return err
		}
		tokens[p.ID] = p.Token
		c, err := dialWS(ctx, base, transportWS, p.Token, 1024)
		if err != nil {
			return err
		}
		defer c.close()
		sub, err := subscribeBalance(name, c)
		if err != nil {
			return err
		}
		pending[p.ID] = sub
		subs = append(subs, sub)
	}
	// Each subscription is live once it has had a push: tasks are created until each popug has
	// been assigned one and seen its FEE, so that no push of the measured tasks is missed.
	for created := 1; len(pending) > 0; created++ {
		if created > 50+20*len(subs) {
			return fmt.Errorf("%d of %d subscriptions never got a push", len(pending), len(subs))
		}
		task, err := createTask(ctx, base, mgr.Token, created)
		if err != nil {
			return err
		}
		sub, ok := pending[task.Assignee.ID]
		if !ok {
			continue
		}
		// The subscribe message gets no answer: a push lost because the subscription was not in
		// the hub yet leaves the popug pending, for the next task assigned to them.
		_, err = sub.next(5 * time.Second)
		switch {
		case errors.Is(err, errTimeout):
			continue
		case err != nil:
			return err
		}
		delete(pending, task.Assignee.ID)
	}

	// Each subscriber's reader notes when each push arrives.
	var mu sync.Mutex
	fees, rewards := map[string]time.Time{}, map[string]time.Time{}
	done := make(chan struct{})
	readerDone := make(chan error, len(subs))
	for _, sub := range subs {
		go func() {
			for {
				p, err := sub.next(time.Second)
				select {
				case <-done:
					readerDone <- nil
					return
				default:
				}
				if errors.Is(err, errTimeout) {
					continue
				}
				if err != nil {
					readerDone <- err
					return
				}
				if p.Entry.Task != nil {
					mu.Lock()
					switch p.Entry.Type {
					case "FEE":
						fees[p.Entry.Task.ID] = p.received
					case "REWARD":
						rewards[p.Entry.Task.ID] = p.received
					}
					mu.Unlock()
				}
			}
		}()
	}
	allIDs, allAssignees := make([]string, warm+n), make([]string, warm+n)
	ids := allIDs[warm:]
	// waitPushes waits for a push of each task.
	waitPushes := func(what string, m map[string]time.Time) error {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			got := 0
			mu.Lock()
			for _, id := range allIDs {
				if _, ok := m[id]; ok {
					got++
				}
			}
			mu.Unlock()
			if got >= len(allIDs) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d %s pushes arrived", got, len(allIDs), what)
			}
			select {
			case err := <-readerDone:
				return fmt.Errorf("%d of %d %s pushes arrived, then the subscription failed: %v", got, len(allIDs), what, err)
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	stopReaders := func() error {
		close(done)
		var errs []error
		for range subs {
			errs = append(errs, <-readerDone)
		}
		return errors.Join(errs...)
	}

	// The tasks to complete, created by 8 clients at once; the completions start once the
	// ledger has caught up with them, so they queue behind nothing.
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	fail := func(err error) { failed.CompareAndSwap(nil, &err) }
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(allIDs) || failed.Load() != nil {
					return
				}
				task, err := createTask(ctx, base, mgr.Token, 1000+i)
				if err != nil {
					fail(err)
					return
				}
				allIDs[i], allAssignees[i] = task.ID, task.Assignee.ID
			}
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return errors.Join(*p, stopReaders())
	}
	if err := waitPushes("fee", fees); err != nil {
		return errors.Join(err, stopReaders())
	}
	time.Sleep(time.Second) // the system settles after the creations

	// Completion i starts at begin + i/rate (later when 256 are in flight already); the
	// measurement starts with the first measured one.
	allReturned, allSent := make([]time.Time, len(allIDs)), make([]time.Time, len(allIDs))
	returned, sent := allReturned[warm:], allSent[warm:]
	inFlight := make(chan struct{}, 256)
	atesPIDs := map[int]string{}
	for _, p := range procs {
		atesPIDs[p.pid()] = p.name
	}
	var (
		profiles []chan error
		load0    string
		host0    map[string]time.Duration
		start    time.Time
	)
	begin := time.Now()
	for i, id := range allIDs {
		time.Sleep(time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		if i == warm {
			if err := stats.reset(); err != nil {
				return errors.Join(err, stopReaders())
			}
			profiles = startProfiles(ctx, o.cpuProfile, procs, time.Duration(math.Ceil(float64(n)/float64(rate)))*time.Second+time.Second)
			load0, host0 = loadAverage(), hostCPU(atesPIDs)
			start = time.Now()
		}
		inFlight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inFlight }()
			allSent[i] = time.Now()
			if err := completeTask(ctx, base, tokens[allAssignees[i]], id); err != nil {
				fail(err)
			}
			allReturned[i] = time.Now()
		})
	}
	wg.Wait()
	if p := failed.Load(); p != nil {
		return errors.Join(*p, stopReaders())
	}
	completing := time.Since(start)
	if err := waitPushes("reward", rewards); err != nil {
		return errors.Join(err, stopReaders())
	}
	draining := time.Since(start)
	host := hostCPU(atesPIDs)
	fmt.Fprintf(out, "%d popugs, %d completions offered at %d/s after %d unmeasured: all returned after %v (%.0f/s), all REWARD pushes after %v (%.0f/s); load average %s → %s\n",
		len(subs), n, rate, warm, completing.Round(time.Millisecond), float64(n)/completing.Seconds(), draining.Round(time.Millisecond), float64(n)/draining.Seconds(),
		load0, loadAverage())
	if len(host) > 0 {
		fmt.Fprintf(out, "CPU of this machine from the first completion to the last push: %s\n", cpuSplit(host0, host, n))
	}
	if err := stats.print(out, n); err != nil {
		return errors.Join(err, stopReaders())
	}
	if err := stopReaders(); err != nil {
		return err
	}
	for _, p := range profiles {
		if err := <-p; err != nil {
			return err
		}
	}
	var fromReturn, fromSend []time.Duration
	early := 0
	for i, id := range ids {
		at := rewards[id]
		d := at.Sub(returned[i])
		if d < 0 {
			early++
			d = 0
		}
		fromReturn = append(fromReturn, d)
		fromSend = append(fromSend, at.Sub(sent[i]))
	}
	if o.series != "" {
		// One line per completion: when it was sent (ms since the first), how long completeTask
		// took and how long its push took after it returned (ms).
		var b strings.Builder
		for i := range ids {
			fmt.Fprintf(&b, "%.3f %.3f %.3f\n", sent[i].Sub(start).Seconds()*1000, returned[i].Sub(sent[i]).Seconds()*1000, fromReturn[i].Seconds()*1000)
		}
		if err := os.WriteFile(o.series, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	slices.Sort(fromReturn)
	slices.Sort(fromSend)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	fmt.Fprintf(out, "push latency over %d completions at %d/s: completeTask returned → REWARD push received: p50 %v, p99 %v, max %v (%d pushes arrived before the HTTP response, counted as 0)\n",
		n, rate, r(percentile(fromReturn, 50)), r(percentile(fromReturn, 99)), r(fromReturn[len(fromReturn)-1]), early)
	fmt.Fprintf(out, "push latency over %d completions at %d/s: completeTask sent → REWARD push received: p50 %v, p99 %v, max %v\n",
		n, rate, r(percentile(fromSend, 50)), r(percentile(fromSend, 99)), r(fromSend[len(fromSend)-1]))
	if tap == nil {
		return nil
	}
	var relay, accounting, gateway []time.Duration
	tap.mu.Lock()
	for i, id := range ids {
		c, rw := tap.completed[id], tap.rewards[id]
		if c.IsZero() || rw.IsZero() {
			continue
		}
		relay = append(relay, c.Sub(returned[i]))
		accounting = append(accounting, rw.Sub(c))
		gateway = append(gateway, rewards[id].Sub(rw))
	}
	tap.mu.Unlock()
	for _, stage := range []struct {
		name string
		d    []time.Duration
	}{
		{"completeTask returned → task.completed on the broker (the worker's tasks relay)", relay},
		{"task.completed → balance.changed on the broker (accounting consumer and relay)", accounting},
		{"balance.changed → push received (gateway feed, hub, WebSocket)", gateway},
	} {
		slices.Sort(stage.d)
		fmt.Fprintf(out, "  stage %s: p50 %v, p99 %v (%d samples)\n", stage.name, r(percentile(stage.d, 50)), r(percentile(stage.d, 99)), len(stage.d))
	}
	return nil
}

// startProfiles asks each process serving HTTP for its CPU profile over the next d, written to
// prefix-<command>.pprof; each channel reports its profile's end. None without a prefix.
func startProfiles(ctx context.Context, prefix string, procs []*atesProcess, d time.Duration) []chan error {
	if prefix == "" {
		return nil
	}
	var out []chan error
	for _, p := range procs {
		if p.metrics == "" {
			continue // the worker serves no HTTP
		}
		c := make(chan error, 1)
		out = append(out, c)
		go func() {
			b, err := p.get(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", int(d.Seconds())))
			if err == nil {
				err = os.WriteFile(prefix+"-"+p.name+".pprof", b, 0o644)
			}
			c <- err
		}()
	}
	return out
}
