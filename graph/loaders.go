package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vikstrous/dataloadgen"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/tasks"
)

// loaders batch the lookups many fields of one operation make, so a page of tasks costs one
// account query, not one per task (no N+1).
type loaders struct {
	accounts *dataloadgen.Loader[uuid.UUID, auth.Account]
	tasks    *dataloadgen.Loader[uuid.UUID, tasks.Task]
}

type loadersKey struct{}

// withLoaders gives every operation fresh loaders: nothing is cached across operations.
func (r *Resolver) withLoaders() graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		l := &loaders{
			accounts: dataloadgen.NewLoader(r.Auth.GetMany, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(500)),
		}
		if r.TaskTracker != nil {
			l.tasks = dataloadgen.NewLoader(r.TaskTracker.GetMany, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(500))
		}
		return next(context.WithValue(ctx, loadersKey{}, l))
	}
}

// account loads an account through the operation's loader.
func (r *Resolver) account(ctx context.Context, id uuid.UUID) (auth.Account, error) {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l.accounts.Load(ctx, id)
	}
	return r.Auth.Get(ctx, id)
}

// task loads a task through the operation's loader.
func (r *Resolver) task(ctx context.Context, id uuid.UUID) (tasks.Task, error) {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok && l.tasks != nil {
		return l.tasks.Load(ctx, id)
	}
	ts, errList := r.TaskTracker.GetMany(ctx, []uuid.UUID{id})
	return ts[0], errList[0]
}
