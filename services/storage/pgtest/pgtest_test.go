package pgtest_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/fault"
	"github.com/uberpopug/ates/services/storage/pgtest"
)

// TestStopStartRestart: the server answers, refuses while stopped (a transient failure,
// R-REL-2), and answers again after Start, Restart and RestartImmediate, keeping its data (a
// crash-safe server keeps every commit).
func TestStopStartRestart(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t, pgtest.CrashSafe())
	db, err := sql.Open("postgres", s.AdminURL()+"&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatalf("on the started server: %v", err)
	}

	s.Stop(t)
	if s.Running() {
		t.Error("Running after Stop")
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = db.QueryRowContext(qctx, `SELECT 1`).Scan(new(int))
	if err == nil {
		t.Fatal("a query on the stopped server succeeded")
	}
	if !fault.IsTransient(qctx, err) {
		t.Errorf("the stopped server's error %v is not transient", err)
	}

	s.Start(t)
	var x int
	if err := db.QueryRowContext(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("after Start: %d, %v; want 42", x, err)
	}
	s.Restart(t)
	if err := db.QueryRowContext(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("after Restart: %d, %v; want 42", x, err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO kept VALUES (43)`); err != nil {
		t.Fatal(err)
	}
	s.RestartImmediate(t)
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM kept WHERE x IN (42, 43)`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("after RestartImmediate: %d rows, %v; want both committed rows", n, err)
	}
}

// TestMaxConnections: the option sets the server's max_connections.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t, pgtest.MaxConnections(77))
	db, err := sql.Open("postgres", s.AdminURL()+"&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow(`SHOW max_connections`).Scan(&v); err != nil || v != "77" {
		t.Fatalf("max_connections = %q, %v; want 77", v, err)
	}
}
