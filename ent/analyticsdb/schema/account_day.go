package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccountDay is an account's balance at the end of a business day on which it had entries: the
// balanceAfter of its last entry of that day in ledger order (R-AN-2). An account's balance at
// the end of any day D is that of its latest AccountDay at or before D.
type AccountDay struct{ ent.Schema }

// Fields of the day's closing balance; integer cents, day as YYYY-MM-DD.
func (AccountDay) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("account_id", uuidType()).Immutable(),
		field.String("day").Immutable(),
		field.Int64("sequence"),
		field.Int64("balance"),
	}
}

// Indexes: one row per account and day; "latest row at or before D" is one index seek.
func (AccountDay) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id", "day").Unique()}
}
