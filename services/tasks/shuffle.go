package tasks

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
)

// shuffleLock is the PostgreSQL advisory lock that serializes shuffles.
const shuffleLock = 0x7a5f_5348 // "zS H": any constant unique within the tasks database

// Shuffle reassigns every OPEN task to an assignable popug drawn uniformly and independently
// per task; ADMIN or MANAGER only (R-TASK-4). Every reassignment is an assignment with its
// task.assigned event, also when the same popug is drawn again. It returns how many tasks
// were reassigned.
//
// One shuffle is one transaction: it reassigns all open tasks or none. It walks the open tasks
// in id order in batches (one UPDATE and one multi-row outbox INSERT per batch), so memory is
// bounded by the batch, not by the number of tasks. A second shuffle started meanwhile waits
// for the first (advisory lock on PostgreSQL; SQLite's write lock) and then shuffles again. A
// completion racing a shuffle is serialized by the row locks (R-TASK-8): a task completed before
// the shuffle reaches it is skipped, a task the shuffle reassigned cannot be completed by its
// old assignee.
func (s *Service) Shuffle(ctx context.Context, actor identity.Actor) (int, error) {
	if !actor.Is(identity.Admin, identity.Manager) {
		return 0, errs.E(errs.Forbidden, "only an admin or a manager can reshuffle tasks")
	}
	total := 0
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		total = 0
		if s.dialect == dialect.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", shuffleLock); err != nil {
				return fmt.Errorf("tasks: waiting for a running shuffle: %w", err)
			}
		}
		popugs, err := assignable(tx.Account.Query()).Order(tasksdb.Asc(account.FieldID)).
			Select(account.FieldPublicID).Strings(ctx)
		if err != nil {
			return fmt.Errorf("tasks: loading assignable popugs: %w", err)
		}
		if len(popugs) == 0 {
			open, err := tx.Task.Query().Where(task.StatusEQ(task.StatusOPEN)).Exist(ctx)
			if err != nil {
				return fmt.Errorf("tasks: looking for open tasks: %w", err)
			}
			if open {
				return errNoAssignee
			}
			return nil
		}
		now := s.now().UTC()
		var after int64
		for {
			batch, err := s.openBatch(ctx, tx, after)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				return nil
			}
			after = batch[len(batch)-1].key
			for i := range batch {
				batch[i].next = popugs[s.rand.IntN(len(popugs))]
			}
			n, err := s.reassign(ctx, tx, batch, now)
			if err != nil {
				return err
			}
			total += n
		}
	})
	if err != nil {
		return 0, err
	}
	if total > 0 {
		s.notify()
	}
	s.log.InfoContext(ctx, "tasks shuffled", "reassigned", total, "by", actor.AccountID)
	return total, nil
}

// shuffled is one open task in a shuffle batch.
type shuffled struct {
	key        int64
	id         string
	previous   string
	next       string
	reassigned bool
}

func (s *Service) openBatch(ctx context.Context, tx *tasksdb.Tx, after int64) ([]shuffled, error) {
	q := "SELECT id, public_id, assignee_id FROM tasks WHERE status = 'OPEN' AND id > ? ORDER BY id LIMIT ?"
	if s.dialect == dialect.Postgres {
		q = "SELECT id, public_id::text, assignee_id::text FROM tasks WHERE status = 'OPEN' AND id > $1 ORDER BY id LIMIT $2"
	}
	rows, err := tx.QueryContext(ctx, q, after, s.batch)
	if err != nil {
		return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
	}
	defer rows.Close()
	batch := make([]shuffled, 0, s.batch)
	for rows.Next() {
		var t shuffled
		if err := rows.Scan(&t.key, &t.id, &t.previous); err != nil {
			return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
		}
		batch = append(batch, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
	}
	return batch, nil
}

// reassign updates the batch's tasks that are still open and stores their task.assigned events.
func (s *Service) reassign(ctx context.Context, tx *tasksdb.Tx, batch []shuffled, now time.Time) (int, error) {
	var (
		q    string
		args []any
	)
	if s.dialect == dialect.Postgres {
		keys, next := make([]int64, len(batch)), make([]string, len(batch))
		for i, t := range batch {
			keys[i], next[i] = t.key, t.next
		}
		q = `UPDATE tasks AS t SET assignee_id = v.a FROM unnest($1::bigint[], $2::uuid[]) AS v(id, a)
			WHERE t.id = v.id AND t.status = 'OPEN' RETURNING t.id`
		args = []any{pq.Array(keys), pq.Array(next)}
	} else {
		var b strings.Builder
		b.WriteString("UPDATE tasks SET assignee_id = v.column2 FROM (VALUES ")
		args = make([]any, 0, 2*len(batch))
		for i, t := range batch {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?,?)")
			args = append(args, t.key, t.next)
		}
		b.WriteString(") AS v WHERE tasks.id = v.column1 AND tasks.status = 'OPEN' RETURNING tasks.id")
		q = b.String()
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("tasks: reassigning tasks: %w", err)
	}
	updated := make(map[int64]bool, len(batch))
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, fmt.Errorf("tasks: reassigning tasks: %w", err)
		}
		updated[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("tasks: reassigning tasks: %w", err)
	}
	recs := make([]outbox.Record, 0, len(updated))
	for _, t := range batch {
		if !updated[t.key] {
			continue // completed since the batch was read
		}
		id, _ := uuid.Parse(t.id)
		next, _ := uuid.Parse(t.next)
		prev := t.previous
		rec, err := assignedEvent(ctx, Task{ID: id, AssigneeID: next}, &prev, contract.AssignedOnShuffle, now)
		if err != nil {
			return 0, err
		}
		recs = append(recs, rec)
	}
	if err := s.outbox.Append(ctx, tx, recs...); err != nil {
		return 0, err
	}
	return len(recs), nil
}
