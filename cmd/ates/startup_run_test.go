package main

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/testenv"
)

// TestGatewayAndWorkersStartTogether starts, at the same moment, a gateway and two workers on
// a PostgreSQL server where none of their databases exists yet, as `docker compose up` does
// (R-OPS-2): they race to create NAME_auth and the others, and to migrate them, and all of
// them come up. Several rounds, each on fresh databases, since who loses which race varies.
func TestGatewayAndWorkersStartTogether(t *testing.T) {
	pgAdmin := testenv.RequirePostgres(t)
	amqpURL := testenv.RequireRabbitMQ(t)
	const rounds = 3
	for round := range rounds {
		var b [5]byte
		_, _ = rand.Read(b[:])
		name := "ates_start_" + hex.EncodeToString(b[:])
		u, _ := url.Parse(pgAdmin)
		u.Path = "/" + name
		t.Cleanup(func() {
			dropDatabases(t, pgAdmin, name)
			deleteExchange(t, amqpURL, name)
			deleteQueues(t, amqpURL, name)
		})
		environ := []string{
			"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(),
			"ATES_DATABASE_URL=" + u.String(), "ATES_AMQP_URL=" + amqpURL, "ATES_AMQP_EXCHANGE=" + name,
			"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
		}
		// The workers' goroutines start at once; the gateway's start waits for its URL.
		w1, _ := MustStart(t, environ, "worker")
		w2, _ := MustStart(t, environ, "worker", "tasks", "accounting")
		gw, base := MustStart(t, environ, "gateway")
		for _, w := range []*process{w1, w2} {
			waitRunning(t, w, "workers running")
		}
		res, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("round %d: /readyz = %d, want 200", round, res.StatusCode)
		}
		mustLogin(t, base, "boss", "boss-beak-print")
		for _, p := range []*process{gw, w1, w2} {
			p.Stop(t)
		}
	}
}

// waitRunning waits until the process logged line, failing the test if it exits first.
func waitRunning(tb testing.TB, p *process, line string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stderr.String(), line) {
		select {
		case err := <-p.done:
			p.cancel = nil // stopped already
			tb.Fatalf("the process exited before %q: %v\nstderr:\n%s", line, err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no %q after 60s\nstderr:\n%s", line, p.stderr.String())
		}
	}
}
