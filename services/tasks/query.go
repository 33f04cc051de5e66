package tasks

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
)

// Filter narrows the task dashboard (R-TASK-1).
type Filter struct {
	Status     *Status
	AssigneeID *uuid.UUID
}

// List returns a page of tasks, newest first; open to every authenticated employee (R-TASK-1).
func (s *Service) List(ctx context.Context, actor identity.Actor, f Filter, req page.Request) (page.Page[Task], error) {
	if actor.AccountID == uuid.Nil {
		return page.Page[Task]{}, errs.E(errs.Unauthenticated, "log in to see tasks")
	}
	q := s.client.Task.Query()
	if f.Status != nil {
		q = q.Where(task.StatusEQ(task.Status(*f.Status)))
	}
	if f.AssigneeID != nil {
		q = q.Where(task.AssigneeID(*f.AssigneeID))
	}
	// The total is read from the counters, not counted (task_counts).
	return s.listPage(ctx, q, req, func() (int, error) { return countedTotal(ctx, s.client, f) })
}

// Mine returns the actor's own tasks, newest first (R-TASK-6).
func (s *Service) Mine(ctx context.Context, actor identity.Actor, status *Status, req page.Request) (page.Page[Task], error) {
	id := actor.AccountID
	return s.List(ctx, actor, Filter{Status: status, AssigneeID: &id}, req)
}

// Get returns a task by id; any authenticated employee may read it.
func (s *Service) Get(ctx context.Context, actor identity.Actor, id uuid.UUID) (Task, error) {
	if actor.AccountID == uuid.Nil {
		return Task{}, errs.E(errs.Unauthenticated, "log in to see tasks")
	}
	row, err := s.client.Task.Query().Where(task.PublicID(id)).Only(ctx)
	if tasksdb.IsNotFound(err) {
		return Task{}, errs.E(errs.NotFound, "no task with id %s", id)
	}
	if err != nil {
		return Task{}, fmt.Errorf("tasks: loading task: %w", err)
	}
	return toTask(row), nil
}

// GetMany returns the tasks with the ids in the order asked, with a NotFound error at the index
// of an unknown id; one query however many ids (for dataloaders).
func (s *Service) GetMany(ctx context.Context, ids []uuid.UUID) ([]Task, []error) {
	return NewLookup(s.client).GetMany(ctx, ids)
}

// Lookup reads tasks by id through a client of its own. The gateway's live balance feed looks
// its pushes' tasks up through one on a small pool of its own (cmd/ates): on the pool requests
// use, a backlog of requests holds every connection, and the feed's lookups — with every push
// behind them — waited their turn among the requests.
type Lookup struct{ client *tasksdb.Client }

// NewLookup returns a Lookup reading through client.
func NewLookup(client *tasksdb.Client) *Lookup { return &Lookup{client: client} }

// GetMany returns the tasks with the ids in the order asked, with a NotFound error at the index
// of an unknown id; one query however many ids.
func (l *Lookup) GetMany(ctx context.Context, ids []uuid.UUID) ([]Task, []error) {
	out, errList := make([]Task, len(ids)), make([]error, len(ids))
	rows, err := l.client.Task.Query().Where(task.PublicIDIn(ids...)).All(ctx)
	if err != nil {
		for i := range errList {
			errList[i] = fmt.Errorf("tasks: loading tasks: %w", err)
		}
		return out, errList
	}
	byID := make(map[uuid.UUID]*tasksdb.Task, len(rows))
	for _, r := range rows {
		byID[r.PublicID] = r
	}
	for i, id := range ids {
		if r, ok := byID[id]; ok {
			out[i] = toTask(r)
		} else {
			errList[i] = errs.E(errs.NotFound, "no task with id %s", id)
		}
	}
	return out, errList
}
