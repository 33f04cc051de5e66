package tasks

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/storage"
)

// Migrate creates or upgrades the task tracker's tables on db: Ent's migration, then what it
// does not do — drop an index the schema no longer has (task_status, see the Task schema's
// Indexes) and, on PostgreSQL, leave 30 % of every tasks page free: a reassignment or a
// completion writes a new row version, which then stays on its row's page instead of dirtying
// another (100 000-task shuffles, six alternating pairs: four faster, two slower, 0.1 s less on
// average). The caller serializes migrations (storage.DB.Migrate).
func Migrate(ctx context.Context, db *storage.DB) error {
	if err := tasksdb.NewClient(tasksdb.Driver(db.Driver())).Schema.Create(ctx); err != nil {
		return err
	}
	if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS task_status"); err != nil {
		return fmt.Errorf("tasks: dropping an old index: %w", err)
	}
	if db.Dialect == dialect.Postgres {
		if _, err := db.SQL.ExecContext(ctx, "ALTER TABLE tasks SET (fillfactor = 70)"); err != nil {
			return fmt.Errorf("tasks: leaving room on the tasks pages: %w", err)
		}
		// searchTasks: a trigram index answers LIKE '%…%' without reading every task.
		for _, q := range []string{
			"CREATE EXTENSION IF NOT EXISTS pg_trgm",
			"CREATE INDEX IF NOT EXISTS task_search_text ON tasks USING gin (search_text gin_trgm_ops)",
		} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("tasks: indexing the search text: %w", err)
			}
		}
	}
	return fillSearchText(ctx, db)
}

// fillSearchText computes the search text of tasks stored before it existed, a thousand per
// transaction. A partial index holds just those tasks, so once none is left a start finds so
// at once.
func fillSearchText(ctx context.Context, db *storage.DB) error {
	if _, err := db.SQL.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS task_search_pending ON tasks (id) WHERE search_text IS NULL"); err != nil {
		return fmt.Errorf("tasks: indexing tasks without a search text: %w", err)
	}
	client := tasksdb.NewClient(tasksdb.Driver(db.Driver()))
	for {
		rows, err := client.Task.Query().Where(task.SearchTextIsNil()).Order(tasksdb.Asc(task.FieldID)).Limit(1000).All(ctx)
		if err != nil {
			return fmt.Errorf("tasks: reading tasks without a search text: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		err = storage.InTx(ctx, client.Tx, func(tx *tasksdb.Tx) error {
			for _, r := range rows {
				// search_text is immutable for the API; the migration writes it once.
				if _, err := tx.ExecContext(ctx, storage.Rebind(db.Dialect, "UPDATE tasks SET search_text = $1 WHERE id = $2 AND search_text IS NULL"),
					SearchText(r.Title, r.JiraID, r.Description), r.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("tasks: filling in search texts: %w", err)
		}
	}
}
