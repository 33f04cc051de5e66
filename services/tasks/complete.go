package tasks

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// Complete marks an OPEN task DONE; only its current assignee may (R-TASK-7). Completing a
// DONE task is a conflict, someone else's task is forbidden. The task is read locked (on
// PostgreSQL FOR UPDATE; SQLite's write transactions run one at a time), so a completion racing
// a shuffle either wins (the shuffle skips the task) or reads the new assignee and fails as
// forbidden — never both (R-TASK-8).
//
// The change is then written by primary key alone. Written with the status and assignee
// conditions as well, PostgreSQL's planner, before the table has statistics, may reach the row
// through the (assignee_id, status) index instead, reading every open task of the popug.
func (s *Service) Complete(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	if actor.AccountID == uuid.Nil {
		return Task{}, errs.E(errs.Unauthenticated, "log in to complete tasks")
	}
	var out Task
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		q := tx.Task.Query().Where(task.PublicID(id))
		if s.dialect == dialect.Postgres {
			q = q.ForUpdate()
		}
		row, err := q.Only(ctx)
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
		n, err := tx.Task.Update().Where(task.ID(row.ID)).SetStatus(task.StatusDONE).SetCompletedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("tasks: completing task: %w", err)
		}
		if n != 1 {
			return fmt.Errorf("tasks: completing task %d: %d rows updated, want 1", row.ID, n)
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
