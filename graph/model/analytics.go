package model

import (
	"time"

	"github.com/uberpopug/ates/services/money"
)

// ExpensiveTask is the GraphQL ExpensiveTask; its task is loaded from the task tracker by
// TaskID, with analytics' own copy (Fallback) when the tracker does not have it.
type ExpensiveTask struct {
	TaskID      string      `json:"-"`
	Fallback    *Task       `json:"-"`
	Reward      money.Cents `json:"reward"`
	CompletedAt time.Time   `json:"completedAt"`
}
