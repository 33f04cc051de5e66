package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Task is accounting's replica of a task with its price, set once when accounting first hears
// of the task and never changed (R-ACC-1). Title and description arrive with task.created,
// possibly after the task's first assignment (R-ACC-4).
type Task struct{ ent.Schema }

// Fields of the priced task; fee and reward are integer cents.
func (Task) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuidType()).Unique().Immutable(),
		field.Int64("fee").Immutable(),
		field.Int64("reward").Immutable(),
		field.Time("priced_at").Immutable(),
		field.String("title").Default(""),
		field.String("jira_id").Optional().Nillable(),
		field.Text("description").Default(""),
		field.Bool("described").Default(false),
	}
}
