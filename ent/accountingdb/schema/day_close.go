package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// DayClose is one run of the end-of-day close (R-ACC-8). A scheduled close sets scheduled_day,
// unique, so a business day is closed by the schedule once however many processes run; a
// manual close (closeBillingDay) leaves it empty. Totals grow in the same transactions as the
// payouts, so they stay right across a crash and a resume.
type DayClose struct{ ent.Schema }

// Fields of the close.
func (DayClose) Fields() []ent.Field {
	return []ent.Field{
		field.String("day").Immutable(),
		field.String("scheduled_day").Optional().Nillable().Unique().Immutable(),
		field.Time("started_at").Immutable(),
		field.Time("finished_at").Optional().Nillable(),
		field.Int("paid_accounts").Default(0),
		field.Int64("total_paid").Default(0),
	}
}
