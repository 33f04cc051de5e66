package tasks_test

import (
	"context"
	"fmt"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// mustMigrate runs tasks.Migrate as a start does.
func mustMigrate(tb testing.TB, db *storage.DB) {
	tb.Helper()
	if err := db.Migrate(context.Background(), func(ctx context.Context) error { return tasks.Migrate(ctx, db) }); err != nil {
		tb.Fatalf("tasks.Migrate: %v", err)
	}
}

// TestMigrationCountsOlderTasks: R-TASK-1 — a database from before the counters gets them
// filled from its tasks by the migration, and tasks.Recount rebuilds them from the tasks
// whatever they hold.
func TestMigrationCountsOlderTasks(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		p := h.MustPopug(t, identity.Worker)
		h.MustPopug(t, identity.Worker)
		for i := range 9 {
			tk := h.MustCreate(t, p, fmt.Sprintf("task %d", i))
			if i%3 == 0 {
				h.MustComplete(t, tk)
			}
		}
		// As before the counters: the table did not exist.
		if _, err := db.SQL.Exec("DROP TABLE task_counts"); err != nil {
			t.Fatal(err)
		}
		mustMigrate(t, db)
		h.mustCountsTrue(t, "the migration of a database without counters")
		if n := h.mustTotal(t, tasks.Filter{}); n != 9 {
			t.Fatalf("total %d after the migration, want 9", n)
		}

		if _, err := db.SQL.Exec("UPDATE task_counts SET n = n + 5"); err != nil {
			t.Fatal(err)
		}
		if err := tasks.Recount(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		h.mustCountsTrue(t, "Recount")
	})
}

// catalog describes every table, index and column of the database with what changes whenever
// DDL touches them: PostgreSQL's catalog row versions (xmin) and oids; SQLite's schema text.
func catalog(tb testing.TB, db *storage.DB) map[string]string {
	tb.Helper()
	q := `SELECT type || ' ' || name, coalesce(sql, '') FROM sqlite_master`
	if db.Dialect == dialect.Postgres {
		q = `SELECT c.relkind::text || ' ' || c.relname::text, c.oid::text || ' ' || c.xmin::text || ' ' || c.relfilenode::text
			|| ' ' || coalesce(array_to_string(c.reloptions, ','), '')
			|| ' ' || coalesce((SELECT string_agg(a.attname::text || ':' || a.xmin::text, ',' ORDER BY a.attnum)
				FROM pg_attribute AS a WHERE a.attrelid = c.oid), '')
			|| ' ' || coalesce((SELECT string_agg(i.xmin::text, ',') FROM pg_index AS i WHERE i.indexrelid = c.oid), '')
			|| ' ' || coalesce((SELECT string_agg(k.conname::text || ':' || k.xmin::text, ',') FROM pg_constraint AS k WHERE k.conrelid = c.oid), '')
			FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'S')`
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			tb.Fatal(err)
		}
		out[name] = def
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// TestSecondStartChangesNoSchema: a start on a database the migration brought up to date, with
// tasks in it, runs no DDL: no table, index (the partial index of open tasks included) or
// column is dropped, recreated or altered, and no table is locked for it.
func TestSecondStartChangesNoSchema(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db) // the first start
		p := h.MustPopug(t, identity.Worker)
		for i := range 5 {
			tk := h.MustCreate(t, p, fmt.Sprintf("task %d", i))
			if i%2 == 0 {
				h.MustComplete(t, tk)
			}
		}
		before := catalog(t, db)
		if _, ok := before["index task_open"]; !ok && db.Dialect == dialect.SQLite {
			t.Fatalf("no partial index of open tasks: %v", before)
		}
		if _, ok := before["i task_open"]; !ok && db.Dialect == dialect.Postgres {
			t.Fatalf("no partial index of open tasks: %v", before)
		}
		mustMigrate(t, db)
		after := catalog(t, db)
		for name, def := range before {
			if after[name] != def {
				t.Errorf("the second start changed %s:\n  before %s\n  after  %s", name, def, after[name])
			}
		}
		for name := range after {
			if _, ok := before[name]; !ok {
				t.Errorf("the second start created %s", name)
			}
		}
		h.mustCountsTrue(t, "the second start")
	})
}
