package tasks

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// Complete marks an OPEN task DONE; only its current assignee may (R-TASK-7). Completing a
// DONE task is a conflict, someone else's task is forbidden. The status change is conditional
// on the task still being open and still the actor's, so a completion racing a shuffle either
// wins (the shuffle skips the task) or fails as forbidden — never both (R-TASK-8).
func (s *Service) Complete(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	if actor.AccountID == uuid.Nil {
		return Task{}, errs.E(errs.Unauthenticated, "log in to complete tasks")
	}
	var out Task
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		row, err := tx.Task.Query().Where(task.PublicID(id)).Only(ctx)
		if tasksdb.IsNotFound(err) {
			return errs.E(errs.NotFound, "no task with id %s", id)
		}
		if err != nil {
			return fmt.Errorf("tasks: loading task: %w", err)
		}
		if err := completable(toTask(row), actor); err != nil {
			return err
		}
		now := s.now().UTC()
		n, err := tx.Task.Update().
			Where(task.ID(row.ID), task.StatusEQ(task.StatusOPEN), task.AssigneeID(actor.AccountID)).
			SetStatus(task.StatusDONE).SetCompletedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("tasks: completing task: %w", err)
		}
		if n == 0 { // changed since it was read: by a shuffle or another completion
			row, err = tx.Task.Get(ctx, row.ID)
			if err != nil {
				return fmt.Errorf("tasks: loading task: %w", err)
			}
			if err := completable(toTask(row), actor); err != nil {
				return err
			}
			return errs.E(errs.Conflict, "the task changed at the same time; try again")
		}
		out = toTask(row)
		out.Status, out.CompletedAt = Done, &now
		completed, err := completedEvent(ctx, out)
		if err != nil {
			return err
		}
		updated, err := updatedEvent(ctx, out, now)
		if err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, completed, updated)
	})
	if err != nil {
		return Task{}, err
	}
	s.notify()
	return out, nil
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
