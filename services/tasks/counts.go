package tasks

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/taskcount"
	"github.com/uberpopug/ates/services/storage"
)

// The dashboard's totals (R-TASK-1, R-TASK-6) are read from task_counts: one counter per popug
// and status. Every change of a task moves them in the transaction — or the statement — that
// stores the change, so they are the tasks counted at every commit; Recount rebuilds them from
// the tasks. Counter rows are locked last in a change, after its task rows, and in (assignee,
// status) order, so changes that touch several cannot wait for each other in a circle.

// countKey names one counter.
type countKey struct {
	assignee uuid.UUID
	status   Status
}

// countChanges is how a change moves the counters: a signed amount per counter.
type countChanges map[countKey]int64

// created counts a task stored OPEN with assignee (R-TASK-2).
func (c countChanges) created(assignee uuid.UUID) { c[countKey{assignee, Open}]++ }

// completed moves a task of assignee from OPEN to DONE (R-TASK-7).
func (c countChanges) completed(assignee uuid.UUID) {
	c[countKey{assignee, Open}]--
	c[countKey{assignee, Done}]++
}

// reassigned moves an OPEN task from one popug to another, who may be the same (R-TASK-4).
func (c countChanges) reassigned(from, to uuid.UUID) {
	c[countKey{from, Open}]--
	c[countKey{to, Open}]++
}

// sorted is the changes other than zero in lock order: by assignee, then status.
func (c countChanges) sorted() []countKey {
	keys := make([]countKey, 0, len(c))
	for k, n := range c {
		if n != 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		if d := strings.Compare(a.assignee.String(), b.assignee.String()); d != 0 {
			return d
		}
		return cmp.Compare(a.status, b.status)
	})
	return keys
}

// countUpsert adds to the counters from its rows: each (assignee, status, amount).
const countUpsert = `INSERT INTO task_counts (assignee_id, status, n) VALUES %s
ON CONFLICT (assignee_id, status) DO UPDATE SET n = task_counts.n + excluded.n`

// countCreatedSQL is countChanges.created inside createSQL, for the row of its task CTE.
const countCreatedSQL = `INSERT INTO task_counts (assignee_id, status, n) SELECT assignee_id, 'OPEN', 1 FROM task
	ON CONFLICT (assignee_id, status) DO UPDATE SET n = task_counts.n + excluded.n`

// countCompletedSQL is countChanges.completed inside completeSQL, for the row of its change CTE,
// in lock order (DONE before OPEN).
const countCompletedSQL = `INSERT INTO task_counts (assignee_id, status, n)
	SELECT change.assignee_id, v.status, v.n FROM change, (VALUES ('DONE', 1), ('OPEN', -1)) AS v(status, n) ORDER BY v.status
	ON CONFLICT (assignee_id, status) DO UPDATE SET n = task_counts.n + excluded.n`

// countChunk bounds the rows of one countUpsert (three parameters each; SQLite takes 32 766).
const countChunk = 1000

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// apply stores the changes through the caller's transaction.
func (c countChanges) apply(ctx context.Context, d string, tx execer) error {
	keys := c.sorted()
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), countChunk)]
		keys = keys[len(chunk):]
		var b strings.Builder
		args := make([]any, 0, 3*len(chunk))
		for i, k := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "($%d, $%d, $%d)", 3*i+1, 3*i+2, 3*i+3)
			args = append(args, k.assignee.String(), string(k.status), c[k])
		}
		if _, err := tx.ExecContext(ctx, storage.Rebind(d, fmt.Sprintf(countUpsert, b.String())), args...); err != nil {
			return fmt.Errorf("tasks: counting tasks: %w", err)
		}
	}
	return nil
}

// countedTotal is the number of tasks the filter selects, summed from the counters (at most
// two per popug).
func countedTotal(ctx context.Context, client *tasksdb.Client, f Filter) (int, error) {
	q := client.TaskCount.Query()
	if f.Status != nil {
		q = q.Where(taskcount.StatusEQ(taskcount.Status(*f.Status)))
	}
	if f.AssigneeID != nil {
		q = q.Where(taskcount.AssigneeID(*f.AssigneeID))
	}
	ns, err := q.Select(taskcount.FieldN).Ints(ctx)
	if err != nil {
		return 0, fmt.Errorf("tasks: reading task counts: %w", err)
	}
	total := 0
	for _, n := range ns {
		total += n
	}
	return total, nil
}

// Recount rebuilds every counter from the tasks, in one transaction: what a migration does once
// for tasks stored before the counters existed, and what a bulk load of tasks written around
// the use cases must do after. On PostgreSQL it holds off every change of a task meanwhile.
func Recount(ctx context.Context, db *storage.DB) error {
	client := tasksdb.NewClient(tasksdb.Driver(db.Driver()))
	err := storage.InTx(ctx, client.Tx, func(tx *tasksdb.Tx) error {
		if db.Dialect == dialect.Postgres {
			// Writers lock tasks and then task_counts; so does this, and SHARE on tasks waits
			// for the changes under way and holds off new ones until the counters are rebuilt.
			// (SQLite runs one writer at a time already.)
			if _, err := tx.ExecContext(ctx, "LOCK TABLE tasks IN SHARE MODE"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "LOCK TABLE task_counts IN EXCLUSIVE MODE"); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM task_counts"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO task_counts (assignee_id, status, n)
			SELECT assignee_id, status, count(*) FROM tasks GROUP BY assignee_id, status`)
		return err
	})
	if err != nil {
		return fmt.Errorf("tasks: recounting tasks: %w", err)
	}
	return nil
}
