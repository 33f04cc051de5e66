package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// TaskCount is how many tasks one popug has in one status: the dashboard's totals (R-TASK-1,
// R-TASK-6) are read from these rows instead of counting tasks. Every use case that stores or
// changes a task moves its counters in the same transaction (tasks.countChanges); tasks.Recount
// rebuilds them from the tasks.
type TaskCount struct{ ent.Schema }

// Annotations name the table.
func (TaskCount) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "task_counts"}}
}

// Fields of a counter.
func (TaskCount) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("assignee_id", uuid.UUID{}).Immutable(),
		field.Enum("status").Values("OPEN", "DONE").Immutable(),
		field.Int64("n"),
	}
}

// Indexes: one counter per popug and status, the key the use cases upsert by.
func (TaskCount) Indexes() []ent.Index {
	return []ent.Index{index.Fields("assignee_id", "status").Unique()}
}
