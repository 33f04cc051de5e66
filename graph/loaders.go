package graph

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/tasks"
)

// loaders batch the lookups many fields of one operation make, so a page of tasks costs one
// account query, not one per task (no N+1).
type loaders struct {
	accounts *dataloadgen.Loader[uuid.UUID, auth.Account]
	tasks    *dataloadgen.Loader[uuid.UUID, tasks.Task]
	prices   *dataloadgen.Loader[uuid.UUID, taskPrice]
}

// taskPrice is a task's price, or that it has none yet (R-ACC-1): a loader remembers both, so a
// page's unpriced tasks cost no query of their own either.
type taskPrice struct {
	accounting.Price
	priced bool
}

// loadPrices reads prices for the loader: an unpriced task is a value, not an error.
func (r *Resolver) loadPrices(ctx context.Context, ids []uuid.UUID) ([]taskPrice, []error) {
	prices, errList := r.Accounting.Prices(ctx, ids)
	out := make([]taskPrice, len(ids))
	for i := range ids {
		switch {
		case errList[i] == nil:
			out[i] = taskPrice{Price: prices[i], priced: true}
		case errs.Is(errList[i], errs.NotFound):
			errList[i] = nil
		}
	}
	return out, errList
}

type loadersKey struct{}

// withLoaders gives every response fresh loaders: nothing is cached across operations, nor
// across the pushes of one subscription — a push shows the task as it is when it is sent, and a
// long-lived subscription does not accumulate every task it ever showed. A query or mutation
// has one response, so its fields still share one batch.
//
// A subscription's push has no batch to share — balanceChanged names one task — so it gets no
// loaders: their batching window (1 ms) would only delay every push, one after another.
func (r *Resolver) withLoaders() graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		if graphql.HasOperationContext(ctx) {
			if op := graphql.GetOperationContext(ctx).Operation; op != nil && op.Operation == ast.Subscription {
				return next(ctx)
			}
		}
		l := &loaders{
			accounts: dataloadgen.NewLoader(r.Auth.GetMany, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(500)),
		}
		if r.TaskTracker != nil {
			l.tasks = dataloadgen.NewLoader(r.TaskTracker.GetMany, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(500))
		}
		if r.Accounting != nil {
			l.prices = dataloadgen.NewLoader(r.loadPrices, dataloadgen.WithWait(time.Millisecond), dataloadgen.WithBatchCapacity(500))
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

// price loads a task's price through the operation's loader.
func (r *Resolver) price(ctx context.Context, id uuid.UUID) (taskPrice, error) {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok && l.prices != nil {
		return l.prices.Load(ctx, id)
	}
	ps, errList := r.loadPrices(ctx, []uuid.UUID{id})
	return ps[0], errList[0]
}

// primeTasks loads what a page of tasks shows from other contexts — the assignees (auth) and
// the prices (accounting) — with one query each, when the operation selects them (edges { node
// { assignee } }, … { price }), and primes the operation's loaders with them. gqlgen resolves
// each field on a goroutine of its own; left to the loaders' batching window alone, goroutines
// scheduled late (under load) miss the first batch and cost queries of their own. Primed, every
// one of them finds its value cached: one query per page however the goroutines are scheduled
// (no N+1, R-TASK-1, R-LIVE-2).
func (r *Resolver) primeTasks(ctx context.Context, page []tasks.Task) {
	l, ok := ctx.Value(loadersKey{}).(*loaders)
	if !ok || len(page) == 0 || graphql.GetFieldContext(ctx) == nil {
		return
	}
	if selects(ctx, "edges", "node", "assignee") {
		r.primeAssignees(ctx, l, page)
	}
	if l.prices != nil && selects(ctx, "edges", "node", "price") {
		ids := make([]uuid.UUID, len(page))
		for i, t := range page {
			ids[i] = t.ID
		}
		prices, errList := r.loadPrices(ctx, ids)
		for i, id := range ids {
			if errList[i] == nil { // else the field's own load reports the error
				l.prices.Prime(id, prices[i])
			}
		}
	}
}

// primeAssignees primes the account loader with the assignees of a page, in one query.
func (r *Resolver) primeAssignees(ctx context.Context, l *loaders, page []tasks.Task) {
	seen := make(map[uuid.UUID]bool, len(page))
	ids := make([]uuid.UUID, 0, len(page))
	for _, t := range page {
		if !seen[t.AssigneeID] {
			seen[t.AssigneeID] = true
			ids = append(ids, t.AssigneeID)
		}
	}
	accounts, errList := r.Auth.GetMany(ctx, ids)
	for i, id := range ids {
		if errList[i] == nil { // else the field's own load reports the error
			l.accounts.Prime(id, accounts[i])
		}
	}
}

// selects reports whether the current field's selection set reaches the path of fields, through
// fragments and aliases.
func selects(ctx context.Context, path ...string) bool {
	op := graphql.GetOperationContext(ctx)
	sel := graphql.GetFieldContext(ctx).Field.Selections
	for _, name := range path {
		var next ast.SelectionSet
		found := false
		for _, f := range graphql.CollectFields(op, sel, nil) {
			if f.Name == name {
				found = true
				next = append(next, f.Selections...)
			}
		}
		if !found {
			return false
		}
		sel = next
	}
	return true
}
