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
