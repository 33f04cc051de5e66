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
// does not do — drop indexes the schema no longer has (task_status, and the (assignee_id,
// status) index that (assignee_id, status, id) replaced), create the partial index of open
// tasks, and, on PostgreSQL, leave 30 % of every tasks page free: a reassignment or a
// completion writes a new row version, which then stays on its row's page instead of dirtying
// another. Counters (task_counts) are filled from the tasks when the table is new. A start on
// an up-to-date database changes no table or index. The caller serializes migrations
// (storage.DB.Migrate).
func Migrate(ctx context.Context, db *storage.DB) error {
	if err := tasksdb.NewClient(tasksdb.Driver(db.Driver())).Schema.Create(ctx); err != nil {
		return err
	}
	for _, old := range []string{"task_status", "task_assignee_id_status"} {
		if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS "+old); err != nil {
			return fmt.Errorf("tasks: dropping an old index: %w", err)
		}
	}
	// The open tasks, in id order: the shuffle reads its batches and the OPEN board its pages
	// from here without walking the done ones. Created here rather than by Ent's migration,
	// whose comparison of partial index predicates with what the database prints back is not
	// reliable (it may drop and recreate such an index at every start).
	if _, err := db.SQL.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS task_open ON tasks (id) WHERE status = 'OPEN'"); err != nil {
		return fmt.Errorf("tasks: indexing the open tasks: %w", err)
	}
	if db.Dialect == dialect.Postgres {
		if err := leaveRoomOnPages(ctx, db); err != nil {
			return err
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
	if err := fillCounts(ctx, db); err != nil {
		return err
	}
	return fillSearchText(ctx, db)
}

// leaveRoomOnPages sets the tasks table's fillfactor to 70 unless it is so already (ALTER TABLE
// locks the table and writes the catalog even when nothing changes).
func leaveRoomOnPages(ctx context.Context, db *storage.DB) error {
	var set bool
	err := db.SQL.QueryRowContext(ctx, `SELECT coalesce('fillfactor=70' = ANY(reloptions), false) FROM pg_class
		WHERE oid = 'tasks'::regclass`).Scan(&set)
	if err == nil && !set {
		_, err = db.SQL.ExecContext(ctx, "ALTER TABLE tasks SET (fillfactor = 70)")
	}
	if err != nil {
		return fmt.Errorf("tasks: leaving room on the tasks pages: %w", err)
	}
	return nil
}

// fillCounts counts the tasks into task_counts when it holds no counter while tasks exist: a
// database from before the counters. Once filled it always holds a row per popug and status
// that ever had a task, so later starts find so in one read.
func fillCounts(ctx context.Context, db *storage.DB) error {
	var counted, stored bool
	err := db.SQL.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM task_counts), EXISTS (SELECT 1 FROM tasks)").Scan(&counted, &stored)
	if err != nil {
		return fmt.Errorf("tasks: looking for task counts: %w", err)
	}
	if counted || !stored {
		return nil
	}
	return Recount(ctx, db)
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
