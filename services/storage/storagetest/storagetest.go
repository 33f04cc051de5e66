// Package storagetest gives tests a fresh, real database per test: a SQLite file in a temporary
// directory, or a new PostgreSQL database dropped when the test ends. Nothing is mocked.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/testenv"
)

// Dialects are the databases storage tests run on.
var Dialects = []string{dialect.SQLite, dialect.Postgres}

// Each runs fn as a subtest per dialect, each with a fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) { fn(t, MustOpen(t, d)) })
	}
}

// MustOpen returns a fresh database of the dialect, removed when the test ends.
func MustOpen(tb testing.TB, d string) *storage.DB {
	tb.Helper()
	ctx := context.Background()
	switch d {
	case dialect.SQLite:
		db, err := storage.OpenSQLite(ctx, filepath.Join(tb.TempDir(), "test.db"))
		if err != nil {
			tb.Fatalf("opening SQLite: %v", err)
		}
		tb.Cleanup(func() { db.Close() })
		return db
	case dialect.Postgres:
		return MustOpenPostgres(tb, MustCreatePostgresDatabase(tb))
	default:
		tb.Fatalf("unknown dialect %q", d)
		return nil
	}
}

// MustCreatePostgresDatabase creates a uniquely named empty database, dropped when the test
// ends, and returns its URL.
func MustCreatePostgresDatabase(tb testing.TB) string {
	tb.Helper()
	admin := testenv.RequirePostgres(tb)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		tb.Fatal(err)
	}
	name := "ates_test_" + hex.EncodeToString(b[:])
	adb, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := adb.Exec("CREATE DATABASE " + pq.QuoteIdentifier(name)); err != nil {
		adb.Close()
		tb.Fatalf("creating test database: %v", err)
	}
	tb.Cleanup(func() {
		defer adb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := adb.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			tb.Logf("dropping test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// MustOpenPostgres opens the database at the URL, closed when the test ends.
func MustOpenPostgres(tb testing.TB, u string) *storage.DB {
	tb.Helper()
	db, err := storage.OpenPostgres(context.Background(), u)
	if err != nil {
		tb.Fatalf("opening PostgreSQL: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// HoldPool makes db's pool busy as a backlog of requests would: it caps the pool at two
// connections and holds both until the test ends, so anything else asking that pool for a
// connection waits.
func HoldPool(tb testing.TB, db *storage.DB) {
	tb.Helper()
	db.SQL.SetMaxOpenConns(2)
	for range 2 {
		c, err := db.SQL.Conn(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
	}
}

// Plan is the database's plan for the statement, its lines joined: EXPLAIN on PostgreSQL — with
// generic, the plan made without the arguments' values (plan_cache_mode = force_generic_plan),
// as a prepared statement may run — and EXPLAIN QUERY PLAN on SQLite.
func Plan(tb testing.TB, db *storage.DB, query string, args []any, generic bool) string {
	tb.Helper()
	ctx := context.Background()
	explain := "EXPLAIN "
	if db.Dialect != dialect.Postgres {
		explain = "EXPLAIN QUERY PLAN "
	}
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	if generic && db.Dialect == dialect.Postgres {
		if _, err := tx.ExecContext(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
			tb.Fatal(err)
		}
	}
	rows, err := tx.QueryContext(ctx, explain+query, args...)
	if err != nil {
		tb.Fatalf("%s%s: %v", explain, query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		tb.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tb.Fatal(err)
		}
		for _, v := range vals {
			switch v := v.(type) {
			case string:
				plan.WriteString(v + " ")
			case []byte:
				plan.Write(v)
				plan.WriteString(" ")
			}
		}
		plan.WriteString("\n")
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return plan.String()
}
