package tasks

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// errNoAssignee is the refusal when nobody can take a task (R-TASK-2).
var errNoAssignee = errs.E(errs.Conflict, "there is no popug a task can be assigned to: every account is an admin, a manager or deactivated")

// assignable selects the accounts tasks may go to (R-TASK-3).
func assignable(q *tasksdb.AccountQuery) *tasksdb.AccountQuery {
	return q.Where(account.Active(true), account.RoleNotIn(account.RoleADMIN, account.RoleMANAGER))
}

// Create stores a task assigned to a uniformly drawn assignable popug, with its task.created
// and task.assigned events; any authenticated employee may create tasks (R-TASK-2).
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
	var out Task
	err := s.inTx(ctx, func(tx *tasksdb.Tx) error {
		count, err := assignable(tx.Account.Query()).Count(ctx)
		if err != nil {
			return fmt.Errorf("tasks: counting assignable popugs: %w", err)
		}
		if count == 0 {
			return errNoAssignee
		}
		assignee, err := assignable(tx.Account.Query()).Order(tasksdb.Asc(account.FieldID)).
			Offset(s.rand.IntN(count)).First(ctx)
		if err != nil {
			return fmt.Errorf("tasks: drawing an assignee: %w", err)
		}
		now := s.now().UTC()
		row, err := tx.Task.Create().SetPublicID(uuid.New()).SetTitle(n.Title).SetNillableJiraID(n.JiraID).
			SetDescription(n.Description).SetAssigneeID(assignee.PublicID).SetCreatedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("tasks: storing task: %w", err)
		}
		out = toTask(row)
		created, err := createdEvent(ctx, out)
		if err != nil {
			return err
		}
		assigned, err := assignedEvent(ctx, out, nil, contract.AssignedOnCreate, now)
		if err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, created, assigned)
	})
	if err != nil {
		return Task{}, err
	}
	s.notify()
	return out, nil
}
