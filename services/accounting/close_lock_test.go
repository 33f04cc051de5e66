package accounting_test

import (
	"context"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestCloseLocksAccountsInLedgerOrder: R-ACC-4/R-ACC-8 — a close batch locks its accounts in the
// order ledger batches do (public id), so the two never deadlock. Account A comes first by key
// and last by public id: a ledger batch holding B and then asking for A must get it while the
// close waits, rather than the close holding A and waiting for B.
func TestCloseLocksAccountsInLedgerOrder(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.Postgres)
	h := MustService(t, db)
	ctx := context.Background()
	const a, b = "ffffffff-0000-7000-8000-00000000000a", "00000000-0000-7000-8000-00000000000b"
	if _, err := db.SQL.ExecContext(ctx, `INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, created_at)
		VALUES ($1, 'a', 'a@example.com', 'A', 'WORKER', true, 1, 100, now()), ($2, 'b', 'b@example.com', 'B', 'WORKER', true, 1, 200, now())`, a, b); err != nil {
		t.Fatal(err)
	}
	ledger, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.Rollback() //nolint:errcheck // a no-op after Commit
	lock := func(id string) error {
		_, err := ledger.ExecContext(ctx, "SELECT balance FROM accounts WHERE public_id = $1 FOR UPDATE", id)
		return err
	}
	if err := lock(b); err != nil {
		t.Fatal(err)
	}
	type result struct {
		paid int
		err  error
	}
	closed := make(chan result, 1)
	go func() {
		res, err := h.svc.CloseNow(ctx, actor(identity.Admin))
		closed <- result{res.PaidAccounts, err}
	}()
	// Wait until the close waits for a row lock.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var waiting int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case r := <-closed:
			t.Fatalf("the close finished (%+v) while an account it pays was locked", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the close never waited for the locked account")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := lock(a); err != nil {
		t.Fatalf("the ledger could not take the account the close reaches first by key: %v", err)
	}
	if err := ledger.Commit(); err != nil {
		t.Fatal(err)
	}
	r := <-closed
	if r.err != nil || r.paid != 2 {
		t.Fatalf("close = %d paid, %v; want both accounts paid", r.paid, r.err)
	}
}
