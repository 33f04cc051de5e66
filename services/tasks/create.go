package tasks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/ids"
	"github.com/uberpopug/ates/services/outbox"
)

// errNoAssignee is the refusal when nobody can take a task (R-TASK-2).
var errNoAssignee = errs.E(errs.Conflict, "there is no popug a task can be assigned to: every account is an admin, a manager or deactivated")

// assignable selects the accounts tasks may go to (R-TASK-3).
func assignable(q *tasksdb.AccountQuery) *tasksdb.AccountQuery {
	return q.Where(account.Active(true), account.RoleNotIn(account.RoleADMIN, account.RoleMANAGER))
}

// Create stores a task assigned to a uniformly drawn assignable popug, with its task.created
// and task.assigned events; any authenticated employee may create tasks (R-TASK-2). On
// PostgreSQL this is one statement (createPostgres); on SQLite one transaction (insertDrawn,
// the counters, then the outbox rows).
func (s *Service) Create(ctx context.Context, actor identity.Actor, n NewTask) (Task, error) {
	if actor.AccountID == uuid.Nil {
		return Task{}, errs.E(errs.Unauthenticated, "log in to create tasks")
	}
	if n.JiraID != nil && *n.JiraID == "" {
		n.JiraID = nil // an empty field means no Jira id
	}
	if err := n.Validate(); err != nil {
		return Task{}, err
	}
	now := s.now().UTC()
	t := Task{ID: ids.New(), Title: n.Title, JiraID: n.JiraID, Description: n.Description, Status: Open, CreatedAt: now}
	if s.dialect == dialect.Postgres {
		out, err := s.createPostgres(ctx, t)
		if err != nil {
			return Task{}, err
		}
		s.notify()
		return out, nil
	}
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		var err error
		if t.AssigneeID, err = s.insertDrawn(ctx, tx, t); err != nil {
			return err
		}
		counts := countChanges{}
		counts.created(t.AssigneeID)
		if err := counts.apply(ctx, s.dialect, tx); err != nil {
			return err
		}
		recs, err := taskCreatedRecords(ctx, t)
		if err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, recs...)
	})
	if err != nil {
		return Task{}, err
	}
	s.notify()
	return t, nil
}

// taskCreatedRecords are the events of a created task: task.created and its first
// task.assigned (R-TASK-2, R-EVT-3).
func taskCreatedRecords(ctx context.Context, t Task) ([]outbox.Record, error) {
	created, err := createdEvent(ctx, t)
	if err != nil {
		return nil, err
	}
	assigned, err := assignedEvent(ctx, t, nil, contract.AssignedOnCreate, t.CreatedAt)
	if err != nil {
		return nil, err
	}
	return []outbox.Record{created, assigned}, nil
}

// assignableSQL is assignable as an SQL condition on accounts (R-TASK-3).
const assignableSQL = "active AND role NOT IN ('ADMIN', 'MANAGER')"

// countAssignable counts the assignable popugs. It has no parameters, so lib/pq sends it in one
// round trip (the simple query protocol) instead of two.
const countAssignable = "SELECT count(*) FROM accounts WHERE " + assignableSQL

// insertDrawnSQL stores a task assigned to the assignable popug at an offset in id order (on
// SQLite: PostgreSQL creates through createSQL): the draw and the insert are one statement, one
// round trip fewer than reading the popug first.
const insertDrawnSQL = `INSERT INTO tasks (public_id, title, jira_id, description, status, assignee_id, created_at)
SELECT ?1, ?2, ?3, ?4, 'OPEN', a.public_id, ?5
FROM accounts AS a WHERE ` + assignableSQL + ` ORDER BY a.id LIMIT 1 OFFSET ?6
RETURNING id, assignee_id`

// insertSearchSQL stores a new task's search text.
const insertSearchSQL = "INSERT INTO task_search (task_id, search_text) VALUES (?, ?)"

// insertDrawn stores t assigned to an assignable popug drawn uniformly (R-TASK-2, R-TASK-3) and
// returns the assignee: it counts the assignable popugs, draws an offset among them in id
// order, and inserts the task with the popug at that offset; with nobody assignable it stores
// nothing and returns errNoAssignee. When popugs left the replica between the count and the
// insert (PostgreSQL runs READ COMMITTED), so the offset is past the end, it counts and draws
// again.
func (s *Service) insertDrawn(ctx context.Context, tx *tasksdb.Tx, t Task) (uuid.UUID, error) {
	for range 3 {
		var count int
		if err := scanOne(ctx, tx, countAssignable, nil, &count); err != nil {
			return uuid.Nil, fmt.Errorf("tasks: counting assignable popugs: %w", err)
		}
		if count == 0 {
			return uuid.Nil, errNoAssignee
		}
		var (
			key      int64
			assignee uuid.UUID
		)
		err := scanOne(ctx, tx, insertDrawnSQL, []any{t.ID, t.Title, t.JiraID, t.Description, t.CreatedAt, s.rand.IntN(count)}, &key, &assignee)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return uuid.Nil, fmt.Errorf("tasks: storing task: %w", err)
		}
		if _, err := tx.ExecContext(ctx, insertSearchSQL, key, SearchText(t.Title, t.JiraID, t.Description)); err != nil {
			return uuid.Nil, fmt.Errorf("tasks: storing the task's search text: %w", err)
		}
		return assignee, nil
	}
	return uuid.Nil, errs.E(errs.Conflict, "the assignable popugs changed while the task was being assigned; try again")
}

// scanOne runs a query of one row through the transaction and scans it into dest, or returns
// sql.ErrNoRows.
func scanOne(ctx context.Context, tx *tasksdb.Tx, query string, args []any, dest ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}
