package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/testenv"
)

// scaleRows are the rows the report of every size must have: the gateway's reads of the
// dashboards (R-TASK-1, R-TASK-6, R-ACC-3, R-ACC-9, R-ACC-6).
var scaleRows = []string{
	"| tasks(first:20) first page |",
	"| tasks(first:20) page at 90 % |",
	"| tasks(status:OPEN) |",
	"| tasks(assigneeId:X) |",
	"| myTasks |",
	"| billingAccount{entries{totalCount}} |",
	"| billingAccount{days} over 365 days |",
	"| managementEarnings over 365 days |",
}

func runScaleTiny(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(context.Background(), append([]string{"scale", "-sizes", "500", "-iterations", "3", "-warmup", "1"}, args...), &out)
	return out.String(), err
}

func checkScaleReport(t *testing.T, report string) {
	t.Helper()
	for _, want := range append([]string{
		"## 500 tasks",
		"Invariants hold: 500 tasks",
		"shuffleTasks (",
		"| read | p50 | p95 | p50 after two shuffles | p95 after two shuffles |",
	}, scaleRows...) {
		if !strings.Contains(report, want) {
			t.Errorf("the report has no %q:\n%s", want, report)
		}
	}
}

// TestScaleSQLite builds a year of 500 tasks on SQLite, checks the invariants (R-ACC-3: every balance
// the sum of its entries; one fee per assignment and one reward per completion, R-ACC-2) and
// times every read before and after two shuffles (R-TASK-4). A second run reuses the kept
// database; once a balance is tampered with, the invariants refuse it.
func TestScaleSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	report, err := runScaleTiny(t, "-dialect", "sqlite", "-dsn", dir, "-keep")
	if err != nil {
		t.Fatalf("scale: %v\n%s", err, report)
	}
	checkScaleReport(t, report)
	if !strings.Contains(report, "Built in") {
		t.Errorf("the first run built nothing:\n%s", report)
	}

	report, err = runScaleTiny(t, "-dialect", "sqlite", "-dsn", dir, "-keep")
	if err != nil {
		t.Fatalf("scale on the kept database: %v\n%s", err, report)
	}
	checkScaleReport(t, report)
	if !strings.Contains(report, "Database kept from an earlier run (2 shuffles there") {
		t.Errorf("the second run did not reuse the database:\n%s", report)
	}

	ctx := context.Background()
	db, err := storage.OpenSQLite(ctx, filepath.Join(dir, "500", "accounting.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `UPDATE accounts SET balance = balance + 1
		WHERE public_id = (SELECT account_id FROM entries ORDER BY id LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	report, err = runScaleTiny(t, "-dialect", "sqlite", "-dsn", dir, "-keep")
	if err == nil || !strings.Contains(err.Error(), "balance is not the sum of their entries") {
		t.Fatalf("scale on a tampered ledger = %v, want the balance invariant to fail\n%s", err, report)
	}
}

// TestScalePostgres is TestScaleSQLite's first run on PostgreSQL, in databases of its own that
// the command drops when it ends.
func TestScalePostgres(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.RequirePostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	u.Path = "/ates_test_scale_" + hex.EncodeToString(b[:])
	report, err := runScaleTiny(t, "-dialect", dialect.Postgres, "-dsn", u.String())
	if err != nil {
		t.Fatalf("scale: %v\n%s", err, report)
	}
	checkScaleReport(t, report)
}
