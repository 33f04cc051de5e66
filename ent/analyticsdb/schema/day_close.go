package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// DayClose is a finished close of a business day as day.closed announced it (R-ACC-8).
type DayClose struct{ ent.Schema }

// Fields of the close; total_paid is integer cents.
func (DayClose) Fields() []ent.Field {
	return []ent.Field{
		field.String("event_id").Unique().Immutable(),
		field.String("day").Immutable(),
		field.Bool("scheduled").Immutable(),
		field.Int("paid_accounts").Immutable(),
		field.Int64("total_paid").Immutable(),
		field.Time("closed_at").Immutable(),
	}
}

// Indexes: the closes of a day.
func (DayClose) Indexes() []ent.Index {
	return []ent.Index{index.Fields("day")}
}
