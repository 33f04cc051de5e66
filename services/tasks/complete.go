package tasks

import (
	"context"
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

// completeChange marks task $2 done at $1 if it is still open and still $3's. The conditions
// are wrapped in IS TRUE, which no index serves, so the planner reaches the row by its primary
// key whatever the table's statistics: bare, before the table has any, it may choose the
// (assignee_id, status) index and read every open task of the popug.
const completeChange = `UPDATE tasks SET status = 'DONE', completed_at = $1
WHERE id = $2 AND (status = 'OPEN' AND assignee_id = $3) IS TRUE
RETURNING id`

// completeInOneStatement completes on PostgreSQL in two round trips, without a transaction:
// it reads the task, then changes it and stores its events in one statement
// (outbox.Writer.AppendAfter), which commits by itself. The events are built from the task as
// read; the change holds only while the task is still open and the actor's, so what they say
// is what was stored.
func (s *Service) completeInOneStatement(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	row, err := s.loadCompletable(ctx, s.client, id, actor)
	if err != nil {
		return Task{}, err
	}
	out, recs, err := completion(ctx, row, s.now().UTC())
	if err != nil {
		return Task{}, err
	}
	changed, err := s.outbox.AppendAfter(ctx, s.client, completeChange, []any{*out.CompletedAt, row.ID, actor.AccountID}, recs...)
	if err != nil {
		return Task{}, fmt.Errorf("tasks: completing task: %w", err)
	}
	if !changed {
		return Task{}, s.lostRace(ctx, s.client, row.ID, actor)
	}
	return out, nil
}

// completeInTx completes in one transaction (SQLite, whose write transactions run one at a
// time, so the task cannot change between its read and its update).
func (s *Service) completeInTx(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	var out Task
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		row, err := s.loadCompletable(ctx, tx.Client(), id, actor)
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
		return s.outbox.Append(ctx, tx, recs...)
	})
	return out, err
}

// loadCompletable reads the task and refuses it if the actor may not complete it.
func (s *Service) loadCompletable(ctx context.Context, c *tasksdb.Client, id uuid.UUID, actor identity.Actor) (*tasksdb.Task, error) {
	row, err := c.Task.Query().Where(task.PublicID(id)).Only(ctx)
	if tasksdb.IsNotFound(err) {
		return nil, errs.E(errs.NotFound, "no task with id %s", id)
	}
	if err != nil {
		return nil, fmt.Errorf("tasks: loading task: %w", err)
	}
	if err := completable(toTask(row), actor); err != nil {
		return nil, err
	}
	return row, nil
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
