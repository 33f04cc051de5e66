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
// R-REL-2), and answers again after Start and Restart, keeping its data.
func TestStopStartRestart(t *testing.T) {
	t.Parallel()
	s := pgtest.Start(t)
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
}
