package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Task is analytics' read model of a task, assembled from task.created, task.updated,
// task.completed and task.priced in whatever order they arrive (R-AN-3, R-AN-4). A task takes
// part in "most expensive" once it has both a reward and a completion; its row then also
// competes for its completion day in DailyTop.
type Task struct{ ent.Schema }

// Fields of the task. Reward is integer cents; completed_day is the completion's business day
// (YYYY-MM-DD in ATES_TIMEZONE, R-ACC-7); described_at orders the descriptive events (title,
// Jira id, description) so a late task.created never overwrites a newer task.updated.
func (Task) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("task_id", uuidType()).Unique().Immutable(),
		field.String("title").Default(""),
		field.String("jira_id").Optional().Nillable(),
		field.Text("description").Default(""),
		field.Time("described_at").Optional().Nillable(),
		field.Int64("reward").Optional().Nillable(),
		field.Time("completed_at").Optional().Nillable(),
		field.String("completed_day").Optional().Nillable(),
		field.UUID("assignee_id", uuidType()).Optional().Nillable(),
	}
}
