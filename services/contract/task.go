package contract

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/uberpopug/ates/services/event"
)

// Task events, produced by the task tracker. task.created (v1 and v2) and task.updated are
// data-replication events; task.assigned and task.completed are business events (R-EVT-6).
const (
	TaskCreated   = "task.created"
	TaskUpdated   = "task.updated"
	TaskAssigned  = "task.assigned"
	TaskCompleted = "task.completed"
)

// TaskCreatedVersion is the version producers emit (R-EVT-3).
const TaskCreatedVersion = 2

// Task statuses as they appear in events.
const (
	TaskOpen = "OPEN"
	TaskDone = "DONE"
)

// Assignment reasons of task.assigned.
const (
	AssignedOnCreate  = "created"
	AssignedOnShuffle = "shuffle"
)

// TaskCreatedV1 is the data of task.created v1: the Jira id, if any, is part of the title as a
// leading "[UBERPOP-42]" (R-EVT-3).
type TaskCreatedV1 struct {
	TaskID      string    `json:"taskId"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdAt"`
}

// TaskCreatedV2 is the data of task.created v2, with the Jira id in its own field.
type TaskCreatedV2 struct {
	TaskID      string    `json:"taskId"`
	Title       string    `json:"title"`
	JiraID      *string   `json:"jiraId"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"createdAt"`
}

// TaskUpdatedV1 is the data of task.updated v1: the task's displayable state after a change.
type TaskUpdatedV1 struct {
	TaskID      string     `json:"taskId"`
	Title       string     `json:"title"`
	JiraID      *string    `json:"jiraId"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"createdAt"`
	CompletedAt *time.Time `json:"completedAt"`
}

// TaskAssignedV1 is the data of task.assigned v1: one assignment, at creation or by a shuffle;
// every one costs the assignee the task's fee (R-ACC-2), also when the assignee is unchanged.
type TaskAssignedV1 struct {
	TaskID             string    `json:"taskId"`
	AssigneeID         string    `json:"assigneeId"`
	PreviousAssigneeID *string   `json:"previousAssigneeId"`
	Reason             string    `json:"reason"`
	AssignedAt         time.Time `json:"assignedAt"`
}

// TaskCompletedV1 is the data of task.completed v1.
type TaskCompletedV1 struct {
	TaskID      string    `json:"taskId"`
	AssigneeID  string    `json:"assigneeId"`
	CompletedAt time.Time `json:"completedAt"`
}

var legacyTitle = regexp.MustCompile(`^\s*\[([A-Z][A-Z0-9]*-[0-9]+)\]\s*(?:-\s*)?(.*?)\s*$`)

// SplitLegacyTitle splits a leading "[JIRA-ID]" (optionally followed by a dash) out of a v1
// title: "[UBERPOP-42] - Fix the beak scanner" → "UBERPOP-42", "Fix the beak scanner". A title
// without one is returned unchanged with no id; a title that is only the id keeps it as title.
func SplitLegacyTitle(title string) (jiraID *string, rest string) {
	m := legacyTitle.FindStringSubmatch(title)
	if m == nil || m[2] == "" {
		return nil, title
	}
	id := m[1]
	return &id, m[2]
}

// DecodeTaskCreated reads task.created of any known version as the newest (R-EVT-3).
func DecodeTaskCreated(e event.Envelope) (TaskCreatedV2, error) {
	switch e.Version {
	case 1:
		var v1 TaskCreatedV1
		if err := e.DecodeData(&v1); err != nil {
			return TaskCreatedV2{}, err
		}
		id, title := SplitLegacyTitle(v1.Title)
		return TaskCreatedV2{TaskID: v1.TaskID, Title: title, JiraID: id, Description: v1.Description, CreatedAt: v1.CreatedAt}, nil
	case 2:
		var v2 TaskCreatedV2
		err := e.DecodeData(&v2)
		return v2, err
	default:
		return TaskCreatedV2{}, fmt.Errorf("task.created v%d is not a version this consumer knows", e.Version)
	}
}

// TaskLabel is how a task reads in an audit log: "UBERPOP-42 Fix the beak scanner".
func TaskLabel(jiraID *string, title string) string {
	if jiraID != nil && *jiraID != "" {
		return strings.TrimSpace(*jiraID + " " + title)
	}
	return title
}
