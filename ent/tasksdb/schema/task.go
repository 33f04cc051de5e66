package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Task is a unit of work with exactly one assignee (R-TASK-2).
type Task struct{ ent.Schema }

// Fields of the task. The integer id orders tasks (and pages); the public id is the API's.
func (Task) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuid.UUID{}).Unique().Immutable(),
		field.String("title").MaxRuneLen(200).Immutable(), // characters, not bytes (R-TASK-2)
		field.String("jira_id").Optional().Nillable().Immutable(),
		field.Text("description").Immutable(),
		field.Enum("status").Values("OPEN", "DONE").Default("OPEN"),
		field.UUID("assignee_id", uuid.UUID{}),
		field.Time("created_at").Immutable(),
		field.Time("completed_at").Optional().Nillable(),
	}
}

// Indexes for the dashboard filters (R-TASK-1, R-TASK-6) and the shuffle's scan of open tasks.
func (Task) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("status"),
		index.Fields("assignee_id", "status"),
	}
}
