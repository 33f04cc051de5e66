package tasks

import (
	"context"
	"fmt"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/storage"
)

// Migrate creates or upgrades the task tracker's tables on db: Ent's migration, then what it
// does not do — drop an index the schema no longer has (task_status, see the Task schema's
// Indexes). The caller serializes migrations (storage.DB.Migrate).
func Migrate(ctx context.Context, db *storage.DB) error {
	if err := tasksdb.NewClient(tasksdb.Driver(db.Driver())).Schema.Create(ctx); err != nil {
		return err
	}
	if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS task_status"); err != nil {
		return fmt.Errorf("tasks: dropping an old index: %w", err)
	}
	return nil
}
