// Package testenv finds the real servers tests run against: PostgreSQL and RabbitMQ. When the
// CI environment variable is set an unreachable server fails the test; otherwise the test is
// skipped with the reason printed.
package testenv

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// PostgresURL is the maintenance database URL of the test PostgreSQL server
// (ATES_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable).
func PostgresURL() string {
	if u := os.Getenv("ATES_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// AMQPURL is the test RabbitMQ URL (ATES_TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672/).
func AMQPURL() string {
	if u := os.Getenv("ATES_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// RequirePostgres returns the server's URL, or fails (CI) or skips the test when it is unreachable.
func RequirePostgres(tb testing.TB) string {
	tb.Helper()
	u := PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("postgres", u)
	if err == nil {
		err = db.PingContext(ctx)
		db.Close()
	}
	if err != nil {
		unreachable(tb, "PostgreSQL", u, err)
	}
	return u
}

// RequireRabbitMQ returns the broker's URL, or fails (CI) or skips the test when it is unreachable.
func RequireRabbitMQ(tb testing.TB) string {
	tb.Helper()
	u := AMQPURL()
	p, err := url.Parse(u)
	if err == nil {
		var c net.Conn
		c, err = net.DialTimeout("tcp", p.Host, 5*time.Second)
		if err == nil {
			c.Close()
		}
	}
	if err != nil {
		unreachable(tb, "RabbitMQ", u, err)
	}
	return u
}

func unreachable(tb testing.TB, what, u string, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s at %s is unreachable and CI is set: %v", what, redact(u), err)
	}
	noteSkip(what, tb.Name())
	tb.Skipf("skipping: %s at %s is unreachable (%v); set CI=1 to make this a failure", what, redact(u), err)
}

// noteSkip appends "what test" to the file ATES_TEST_SKIPS names, when it does: `make test`
// lists the tests its servers' absence skipped, which go test without -v does not show.
func noteSkip(what, test string) {
	path := os.Getenv("ATES_TEST_SKIPS")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(what + " unreachable: " + test + "\n")
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}
