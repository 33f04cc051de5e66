package tasks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/storage"
)

// Migrate creates or upgrades the task tracker's tables on db: Ent's migration, then what it
// does not do — drop indexes the schema no longer has (task_status, and the (assignee_id,
// status) index that (assignee_id, status, id) replaced), create the partial index of open
// tasks, and, on PostgreSQL, leave 30 % of every tasks page free: a reassignment or a
// completion writes a new row version, which then stays on its row's page instead of dirtying
// another. The search texts of a database from before task_search move there (moveSearchText).
// Counters (task_counts) are filled from the tasks when the table is new. A start on
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
	}
	if err := moveSearchText(ctx, db); err != nil {
		return err
	}
	if db.Dialect == dialect.Postgres {
		// searchTasks: a trigram index answers LIKE '%…%' without reading every search text.
		for _, q := range []string{
			"CREATE EXTENSION IF NOT EXISTS pg_trgm",
			"CREATE INDEX IF NOT EXISTS task_search_trgm ON task_search USING gin (search_text gin_trgm_ops)",
		} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("tasks: indexing the search text: %w", err)
			}
		}
	}
	return fillCounts(ctx, db)
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

// moveSearchText moves the search texts of a database from before task_search out of the
// tasks (their column search_text) into task_search, computes those the tasks lacked (stored
// before there was a search text), then drops the column with its indexes (task_search_text,
// the trigram index; task_search_pending, of the tasks without one). A start that finds no
// such column does nothing more than look. Each step is idempotent, so a start interrupted
// midway finishes the move at the next.
func moveSearchText(ctx context.Context, db *storage.DB) error {
	q := "SELECT count(*) FROM pragma_table_info('tasks') WHERE name = 'search_text'"
	if db.Dialect == dialect.Postgres {
		q = `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = 'tasks' AND column_name = 'search_text'`
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("tasks: looking for the old search text column: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := db.SQL.ExecContext(ctx, `INSERT INTO task_search (task_id, search_text)
		SELECT id, search_text FROM tasks WHERE search_text IS NOT NULL ON CONFLICT (task_id) DO NOTHING`); err != nil {
		return fmt.Errorf("tasks: moving the search texts: %w", err)
	}
	if err := fillSearchText(ctx, db); err != nil {
		return err
	}
	for _, q := range []string{
		"DROP INDEX IF EXISTS task_search_text",
		"DROP INDEX IF EXISTS task_search_pending",
		"ALTER TABLE tasks DROP COLUMN search_text",
	} {
		if _, err := db.SQL.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("tasks: dropping the old search text column: %w", err)
		}
	}
	return nil
}

// fillSearchText computes the search text of the tasks that have none in task_search (stored
// before tasks had a search text), a thousand per transaction; it runs only while the old
// column is being moved.
func fillSearchText(ctx context.Context, db *storage.DB) error {
	for {
		rows, err := db.SQL.QueryContext(ctx, `SELECT t.id, t.title, t.jira_id, t.description FROM tasks AS t
			WHERE NOT EXISTS (SELECT 1 FROM task_search AS s WHERE s.task_id = t.id) ORDER BY t.id LIMIT 1000`)
		if err != nil {
			return fmt.Errorf("tasks: reading tasks without a search text: %w", err)
		}
		type pending struct {
			id   int64
			text string
		}
		var todo []pending
		for rows.Next() {
			var (
				p                  pending
				title, description string
				jiraID             sql.NullString
			)
			if err := rows.Scan(&p.id, &title, &jiraID, &description); err != nil {
				rows.Close()
				return fmt.Errorf("tasks: reading tasks without a search text: %w", err)
			}
			var j *string
			if jiraID.Valid {
				j = &jiraID.String
			}
			p.text = SearchText(title, j, description)
			todo = append(todo, p)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("tasks: reading tasks without a search text: %w", err)
		}
		if len(todo) == 0 {
			return nil
		}
		begin := func(ctx context.Context) (*sql.Tx, error) { return db.SQL.BeginTx(ctx, nil) }
		err = storage.InTx(ctx, begin, func(tx *sql.Tx) error {
			for _, p := range todo {
				if _, err := tx.ExecContext(ctx, storage.Rebind(db.Dialect,
					"INSERT INTO task_search (task_id, search_text) VALUES ($1, $2) ON CONFLICT (task_id) DO NOTHING"), p.id, p.text); err != nil {
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
