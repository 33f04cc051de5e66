package main

import (
	"context"
	"testing"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestMigrateDropsTheStatusIndex: a tasks database made before task_status left the schema
// loses the index when migrated, so its shuffles stop paying an entry in it per task; migrating
// again is a no-op.
func TestMigrateDropsTheStatusIndex(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		if err := migrate(ctx, "tasks", db); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, "CREATE INDEX task_status ON tasks (status)"); err != nil {
			t.Fatalf("recreating the old index: %v", err)
		}
		hasIndex := func() bool {
			t.Helper()
			q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'task_status'"
			if db.Dialect == "postgres" {
				q = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'task_status'"
			}
			var n int
			if err := db.SQL.QueryRowContext(ctx, q).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n > 0
		}
		if !hasIndex() {
			t.Fatal("the old index was not created: the test checks nothing")
		}
		for range 2 {
			if err := migrate(ctx, "tasks", db); err != nil {
				t.Fatal(err)
			}
			if hasIndex() {
				t.Fatal("task_status is still there after the migration")
			}
		}
	})
}
