package graph

import (
	"context"

	"github.com/uberpopug/ates/graph/model"
)

// MaxSubscriberLag and MaxTaskLag expose the feeds' lag bounds to the hub's tests.
const (
	MaxSubscriberLag = maxBalanceLag
	MaxTaskLag       = maxTaskLag
)

// stalledTaker takes no push: a follower whose socket stopped reading.
type stalledTaker struct{ ended func() error }

func (s *stalledTaker) take(step func() bool, ended func() error) func() {
	s.ended = ended
	return func() {}
}

// WithStalledTaker returns a context whose subscriptions are taken by a taker that never takes
// a push, and a function telling why the hub ended the subscription.
func WithStalledTaker(ctx context.Context) (context.Context, func() error) {
	t := &stalledTaker{}
	return withPushTaker(ctx, t), func() error { return t.ended() }
}

// TaskChangeForTest is a task's creation as the task feed reads it.
func TaskChangeForTest(taskID, assigneeID string) *model.TaskChange {
	return &model.TaskChange{Kind: model.TaskChangeKindCreated, TaskID: taskID, AssigneeID: assigneeID,
		FoundTask: &model.Task{ID: taskID, Title: "Someone else's", Status: model.TaskStatusOpen, AssigneeID: assigneeID}}
}
