package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/testenv"
)

// The measurements at a tiny size: each subcommand runs end to end against a real aTES (the
// binary built once from this module) and prints every figure it promises. The figures
// themselves are not judged.

var (
	buildOnce sync.Once
	atesBin   string
	buildErr  error
)

// mustAtes builds the ates binary once for every test of the package.
func mustAtes(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "atesbench-test-")
		if err != nil {
			buildErr = err
			return
		}
		var log bytes.Buffer
		atesBin, buildErr = (&servers{}).binary(context.Background(), dir, &log)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return atesBin
}

func mustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, args, &out); err != nil {
		tb.Fatalf("atesbench %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	tb.Logf("atesbench %s:\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

func mustContain(tb testing.TB, out string, patterns ...string) {
	tb.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(out) {
			tb.Errorf("the report has no line matching %q", p)
		}
	}
}

func TestUsageAndUnknownCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	mustContain(t, out.String(), `(?m)^  latency `, `(?m)^  sockets `)
	if err := run(context.Background(), []string{"nonsense"}, &out); err == nil {
		t.Error("an unknown command ran")
	}
	if err := run(context.Background(), []string{"latency", "-mode", "sideways"}, &out); err == nil {
		t.Error("latency ran with -mode sideways")
	}
	if err := run(context.Background(), []string{"sockets", "-protocol", "smoke-signals"}, &out); err == nil {
		t.Error("sockets ran with an unknown subprotocol")
	}
}

func TestSockets(t *testing.T) {
	t.Parallel()
	profile := filepath.Join(t.TempDir(), "heap.pprof")
	out := mustRun(t, "sockets", "-ates", mustAtes(t), "-sockets", "8", "-protocol", "graphql-ws", "-idle", "0s", "-heapprofile", profile)
	mustContain(t, out,
		`8 idle subscribed WebSockets over graphql-ws`,
		`gateway process \(server side only\), per socket: VmRSS -?[0-9.]+ KiB after a full GC .*heap in use -?[0-9.]+ KiB, goroutine stacks`,
		`gateway process totals: heap in use`,
		`client process, per socket: VmRSS`)
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("heap profile: %v", err)
	}
}

// TestLatency runs both shapes: the embedded default, and a gateway and a worker on the real
// PostgreSQL and RabbitMQ, with the broker tap's stages, the series and the CPU profile.
func TestLatency(t *testing.T) {
	t.Parallel()
	pg, amqpURL := testenv.RequirePostgres(t), testenv.RequireRabbitMQ(t)
	before := benchDatabases(t, pg)
	dir := t.TempDir()
	series, profile := filepath.Join(dir, "series"), filepath.Join(dir, "cpu")
	out := mustRun(t, "latency", "-ates", mustAtes(t), "-postgres", pg, "-amqp", amqpURL,
		"-completions", "6", "-rate", "30", "-warmup", "2", "-popugs", "2", "-stages", "-series", series, "-cpuprofile", profile)
	mustContain(t, out,
		`== embedded`, `== postgres\+rabbitmq`,
		`2 popugs, 6 completions offered at 30/s after 2 unmeasured`,
		`CPU of this machine from the first completion to the last push: .*ates gateway`,
		`completeTask returned → REWARD push received: p50 \S+, p99 \S+, max`,
		`completeTask sent → REWARD push received: p50`,
		`stage task.completed → balance.changed on the broker .*\(6 samples\)`)
	if b, err := os.ReadFile(series); err != nil || len(strings.Split(strings.TrimSpace(string(b)), "\n")) != 6 {
		t.Errorf("series: %q, %v; want a line per measured completion", b, err)
	}
	for _, name := range []string{"embedded", "gateway"} {
		if fi, err := os.Stat(profile + "-" + name + ".pprof"); err != nil || fi.Size() == 0 {
			t.Errorf("CPU profile of %s: %v", name, err)
		}
	}
	if after := benchDatabases(t, pg); after > before {
		t.Errorf("%d databases of measurements before, %d after: the production shape was not removed", before, after)
	}
}

// benchDatabases counts the databases of production-shaped measurements on the server.
func benchDatabases(tb testing.TB, dsn string) int {
	tb.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pg_database WHERE datname LIKE 'ates\_bench\_%'`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}
