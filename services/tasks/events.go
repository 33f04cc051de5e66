package tasks

import (
	"context"
	"time"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/outbox"
)

// record builds an outbox record of a task event, keyed by the task so its events stay in order.
func record(ctx context.Context, t Task, name string, version int, at time.Time, data any) (outbox.Record, error) {
	e, err := event.New(ctx, Producer, name, version, at, data)
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Key: t.ID.String(), Envelope: e}, nil
}

func createdEvent(ctx context.Context, t Task) (outbox.Record, error) {
	return record(ctx, t, contract.TaskCreated, contract.TaskCreatedVersion, t.CreatedAt, contract.TaskCreatedV2{
		TaskID: t.ID.String(), Title: t.Title, JiraID: t.JiraID, Description: t.Description, CreatedAt: t.CreatedAt,
	})
}

func updatedEvent(ctx context.Context, t Task, at time.Time) (outbox.Record, error) {
	return record(ctx, t, contract.TaskUpdated, 1, at, contract.TaskUpdatedV1{
		TaskID: t.ID.String(), Title: t.Title, JiraID: t.JiraID, Description: t.Description,
		Status: string(t.Status), CreatedAt: t.CreatedAt, CompletedAt: t.CompletedAt,
	})
}

func assignedEvent(ctx context.Context, t Task, previous *string, reason string, at time.Time) (outbox.Record, error) {
	return record(ctx, t, contract.TaskAssigned, 1, at, contract.TaskAssignedV1{
		TaskID: t.ID.String(), AssigneeID: t.AssigneeID.String(), PreviousAssigneeID: previous,
		Reason: reason, AssignedAt: at,
	})
}

func completedEvent(ctx context.Context, t Task) (outbox.Record, error) {
	return record(ctx, t, contract.TaskCompleted, 1, *t.CompletedAt, contract.TaskCompletedV1{
		TaskID: t.ID.String(), AssigneeID: t.AssigneeID.String(), CompletedAt: *t.CompletedAt,
	})
}
