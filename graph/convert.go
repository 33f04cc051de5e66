package graph

import (
	"context"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/tasks"
)

// parseID reads an id argument; a malformed one is BAD_USER_INPUT naming the argument.
func parseID(arg, id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, errs.InvalidField(arg, "%s is not a valid id", arg)
	}
	return u, nil
}

func accountModel(a auth.Account) *model.Account {
	return &model.Account{
		ID: a.ID.String(), Username: a.Username, FullName: a.FullName, Email: a.Email,
		Role: model.Role(a.Role), Active: a.Active, CreatedAt: a.CreatedAt.UTC(),
	}
}

func sessionModel(s auth.Session) *model.AuthPayload {
	return &model.AuthPayload{Token: s.Token, ExpiresAt: s.ExpiresAt.UTC(), Account: accountModel(s.Account)}
}

// pageInfo builds a Relay PageInfo from a page's keys.
func pageInfo[T any](p page.Page[T]) (*model.PageInfo, []string) {
	cursors := make([]string, len(p.Keys))
	for i, k := range p.Keys {
		cursors[i] = page.EncodeCursor(k)
	}
	info := &model.PageInfo{HasNextPage: p.HasNext, HasPreviousPage: p.HasPrev}
	if len(cursors) > 0 {
		info.StartCursor, info.EndCursor = &cursors[0], &cursors[len(cursors)-1]
	}
	return info, cursors
}

func taskModel(t tasks.Task) *model.Task {
	return &model.Task{
		ID: t.ID.String(), Title: t.Title, JiraID: t.JiraID, Description: t.Description,
		Status: model.TaskStatus(t.Status), AssigneeID: t.AssigneeID.String(),
		CreatedAt: t.CreatedAt.UTC(), CompletedAt: t.CompletedAt,
	}
}

func taskConnection(p page.Page[tasks.Task]) *model.TaskConnection {
	info, cursors := pageInfo(p)
	conn := &model.TaskConnection{PageInfo: info, TotalCount: p.TotalCount, Edges: make([]*model.TaskEdge, len(p.Items))}
	for i, t := range p.Items {
		conn.Edges[i] = &model.TaskEdge{Cursor: cursors[i], Node: taskModel(t)}
	}
	return conn
}

// actorAndAccount returns the actor and a parsed account id argument.
func actorAndAccount(ctx context.Context, accountID string) (identity.Actor, uuid.UUID, error) {
	a, err := actor(ctx)
	if err != nil {
		return identity.Actor{}, uuid.Nil, err
	}
	id, err := parseID("accountId", accountID)
	return a, id, err
}

func billingModel(b accounting.BillingAccount) *model.BillingAccount {
	return &model.BillingAccount{AccountID: b.AccountID.String(), Balance: b.Balance, EarnedToday: b.EarnedToday}
}

func entryModel(e accounting.Entry) *model.LedgerEntry {
	m := &model.LedgerEntry{
		ID: e.ID.String(), Type: model.LedgerEntryType(e.Type), Amount: e.Amount, BalanceAfter: e.BalanceAfter,
		Description: e.Description, OccurredAt: e.OccurredAt.UTC(), Day: e.Day,
	}
	if e.TaskID != nil {
		id := e.TaskID.String()
		m.TaskID = &id
	}
	return m
}

func bucketModel(b analytics.Bucket) *model.MostExpensiveTask {
	m := &model.MostExpensiveTask{From: b.From, To: b.To}
	if t := b.Top; t != nil {
		completed := t.CompletedAt.UTC()
		m.Top = &model.ExpensiveTask{
			TaskID: t.TaskID.String(), Reward: t.Reward, CompletedAt: completed,
			Fallback: &model.Task{
				ID: t.TaskID.String(), Title: t.Title, JiraID: t.JiraID, Description: t.Description,
				Status: model.TaskStatusDone, AssigneeID: t.AssigneeID.String(), CompletedAt: &completed,
			},
		}
	}
	return m
}

func accountConnection(p page.Page[auth.Account]) *model.AccountConnection {
	info, cursors := pageInfo(p)
	conn := &model.AccountConnection{PageInfo: info, TotalCount: p.TotalCount, Edges: make([]*model.AccountEdge, len(p.Items))}
	for i, acc := range p.Items {
		conn.Edges[i] = &model.AccountEdge{Cursor: cursors[i], Node: accountModel(acc)}
	}
	return conn
}
