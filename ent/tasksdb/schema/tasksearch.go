package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// TaskSearch is what searchTasks looks in for one task: its title, Jira id and description,
// case-folded in Go (Unicode, the same on both databases; tasks.SearchText). It is written once,
// with the task, and never changes: a task's texts are immutable. It lives beside the tasks
// rather than in them so that a reassignment or a completion — a new version of the task row —
// never writes the search text again nor an entry into its trigram index (PostgreSQL:
// task_search_trgm, created by tasks.Migrate).
type TaskSearch struct{ ent.Schema }

// Annotations name the table.
func (TaskSearch) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: "task_search"}}
}

// Fields of a task's search text: task_id is the task's integer id.
func (TaskSearch) Fields() []ent.Field {
	return []ent.Field{
		field.Int("task_id").Immutable(),
		field.Text("search_text").Immutable(),
	}
}

// Indexes: one search text per task.
func (TaskSearch) Indexes() []ent.Index {
	return []ent.Index{index.Fields("task_id").Unique()}
}
