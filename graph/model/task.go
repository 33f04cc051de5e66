package model

import "time"

// Task is the GraphQL Task; the assignee is resolved from AssigneeID by a dataloader.
type Task struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	JiraID      *string    `json:"jiraId,omitempty"`
	Description string     `json:"description"`
	Status      TaskStatus `json:"status"`
	AssigneeID  string     `json:"-"`
	CreatedAt   time.Time  `json:"createdAt"`
	CompletedAt *time.Time `json:"completedAt,omitempty"`
}

// TaskChange is one change on the task board (R-LIVE-1), as the gateway's task feed read it
// from an event: the task and the previous assignee are resolved when the push is sent, the
// task from FoundTask when the feed looked it up with its batch.
type TaskChange struct {
	Kind       TaskChangeKind `json:"kind"`
	TaskID     string         `json:"-"`
	AssigneeID string         `json:"-"`
	// PreviousAssigneeID is who held the task before a shuffle (REASSIGNED only).
	PreviousAssigneeID *string   `json:"-"`
	OccurredAt         time.Time `json:"occurredAt"`
	// FoundTask is the task as the feed found it, nil when it was not looked up.
	FoundTask *Task `json:"-"`
}
