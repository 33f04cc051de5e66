package tasks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
)

// Complete marks an OPEN task DONE; only its current assignee may (R-TASK-7). Completing a
// DONE task is a conflict, someone else's task is forbidden. The change and its events
// (task.completed, task.updated) are stored together or not at all, and only while the task is
// still open and still the actor's, so a completion racing a shuffle either wins (the shuffle
// skips the task) or fails as forbidden — never both (R-TASK-8).
func (s *Service) Complete(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	if actor.AccountID == uuid.Nil {
		return Task{}, errs.E(errs.Unauthenticated, "log in to complete tasks")
	}
	complete := s.completeInTx
	if s.dialect == dialect.Postgres {
		complete = s.completeInOneStatement
	}
	out, err := complete(ctx, actor, id)
	if err != nil {
		return Task{}, err
	}
	s.notify()
	return out, nil
}

// completeSQL is the statement of completeInOneStatement: task $2 marked done at $1 if it is
// still open and still $3's, and its counters (countChanges.completed) and the outbox rows,
// inserted only with that change, the rows in the order given. It affects completeEvents rows when it completed the task, none otherwise; it commits
// by itself. The conditions are wrapped in IS TRUE, which no index serves, so the planner
// reaches the row by its primary key whatever the table's statistics: bare, before the table
// has any, it may choose the (assignee_id, status) index and read every open task of the popug.
var completeSQL = `WITH change AS (
	UPDATE tasks SET status = 'DONE', completed_at = $1::timestamptz
	WHERE id = $2::bigint AND (status = 'OPEN' AND assignee_id = $3::uuid) IS TRUE
	RETURNING id, assignee_id
), counted AS (
	` + countCompletedSQL + `
)
` + outboxValues(completeFixedArgs, completeEvents, "change")

// completeEvents is how many outbox rows a completion has: task.completed and task.updated.
const completeEvents = 2

// completeFixedArgs is how many of completeSQL's parameters are the change's.
const completeFixedArgs = 3

// loadSQL reads a task by its public id, its columns in the order loadCompletable scans.
const loadSQL = `SELECT id, public_id, title, jira_id, description, status, assignee_id, created_at, completed_at
FROM tasks WHERE public_id = $1`

// completeInOneStatement completes on PostgreSQL in two round trips, without a transaction: it
// reads the task, then changes it and stores its events in one statement (completeSQL). The
// events are built from the task as read; the change holds only while the task is still open
// and the actor's, so what they say is what was stored. Both statements run prepared when the
// service has the pool (Config.DB): parsing and planning them cost PostgreSQL more than
// running them.
func (s *Service) completeInOneStatement(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	row, err := loadCompletable(s.queryRow(ctx, loadSQL, id), id, actor)
	if err != nil {
		return Task{}, err
	}
	out, recs, err := completion(ctx, row, s.now().UTC())
	if err != nil {
		return Task{}, err
	}
	rows, err := s.outbox.Rows(recs...)
	if err != nil {
		return Task{}, err
	}
	args := append(make([]any, 0, completeFixedArgs+6*len(rows)), *out.CompletedAt, row.ID, actor.AccountID)
	res, err := s.exec(ctx, completeSQL, appendRowArgs(args, rows)...)
	if err != nil {
		return Task{}, fmt.Errorf("tasks: completing task: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Task{}, fmt.Errorf("tasks: completing task: %w", err)
	}
	switch n {
	case completeEvents:
		return out, nil
	case 0:
		return Task{}, s.lostRace(ctx, s.client, row.ID, actor)
	default:
		return Task{}, fmt.Errorf("tasks: completing task: %d outbox rows stored, want %d", n, completeEvents)
	}
}

// completeInTx completes in one transaction (SQLite, whose write transactions run one at a
// time, so the task cannot change between its read and its update).
func (s *Service) completeInTx(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	var out Task
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		rows, err := tx.QueryContext(ctx, s.sql(loadSQL), id)
		row, err := loadCompletable(firstRow{rows, err}, id, actor)
		if err != nil {
			return err
		}
		var recs []outbox.Record
		if out, recs, err = completion(ctx, row, s.now().UTC()); err != nil {
			return err
		}
		n, err := tx.Task.Update().Where(task.ID(row.ID), task.StatusEQ(task.StatusOPEN), task.AssigneeID(actor.AccountID)).
			SetStatus(task.StatusDONE).SetCompletedAt(*out.CompletedAt).Save(ctx)
		if err != nil {
			return fmt.Errorf("tasks: completing task: %w", err)
		}
		if n == 0 {
			return s.lostRace(ctx, tx.Client(), row.ID, actor)
		}
		counts := countChanges{}
		counts.completed(actor.AccountID)
		if err := counts.apply(ctx, s.dialect, tx); err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, recs...)
	})
	return out, err
}

// loadCompletable scans the task loadSQL read and refuses it if the actor may not complete it.
func loadCompletable(r rowScanner, id uuid.UUID, actor identity.Actor) (*tasksdb.Task, error) {
	var (
		row    tasksdb.Task
		status string
	)
	err := r.Scan(&row.ID, &row.PublicID, &row.Title, &row.JiraID, &row.Description, &status,
		&row.AssigneeID, &row.CreatedAt, &row.CompletedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "no task with id %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("tasks: loading task: %w", err)
	}
	row.Status = task.Status(status)
	if err := completable(toTask(&row), actor); err != nil {
		return nil, err
	}
	return &row, nil
}

// lostRace is the error of a completion whose task changed after it was read: by a shuffle
// (forbidden now) or another completion (already done).
func (s *Service) lostRace(ctx context.Context, c *tasksdb.Client, id int, actor identity.Actor) error {
	row, err := c.Task.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("tasks: loading task: %w", err)
	}
	if err := completable(toTask(row), actor); err != nil {
		return err
	}
	return errs.E(errs.Conflict, "the task changed at the same time; try again")
}

// completion is the task as completed at now, and its events.
func completion(ctx context.Context, row *tasksdb.Task, now time.Time) (Task, []outbox.Record, error) {
	out := toTask(row)
	out.Status, out.CompletedAt = Done, &now
	completed, err := completedEvent(ctx, out)
	if err != nil {
		return Task{}, nil, err
	}
	updated, err := updatedEvent(ctx, out, now)
	if err != nil {
		return Task{}, nil, err
	}
	return out, []outbox.Record{completed, updated}, nil
}

// completable applies R-TASK-7 to a task as read.
func completable(t Task, actor identity.Actor) error {
	switch {
	case t.Status == Done:
		return errs.E(errs.Conflict, "the task is already done")
	case t.AssigneeID != actor.AccountID:
		return errs.E(errs.Forbidden, "only the task's assignee can complete it")
	}
	return nil
}
