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

// Indexes for the dashboard filters (R-TASK-1, R-TASK-6). Pages are read newest first by id:
// one popug's tasks of one status through (assignee_id, status, id); all of one popug's tasks
// through its prefix (a popug with few tasks) or the primary key walked with a filter (a popug
// with many: PostgreSQL's choice by its statistics); all tasks through the primary key. The
// open tasks — the shuffle's batches and the OPEN board — are read through a partial index
// tasks.Migrate creates (task_open). Every index costs each reassignment an entry (an indexed
// column changes, so no HOT update), hence no index on status alone nor on (assignee_id, id).
// Totals come from task_counts, never from counting these indexes. The search text, with its
// trigram index, is in task_search (TaskSearch), so a reassignment does not touch it.
func (Task) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("assignee_id", "status", "id"),
	}
}
