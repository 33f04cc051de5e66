package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Payment is a payout made at a close: the PAYOUT entry's amount paid to the popug (R-ACC-8).
type Payment struct{ ent.Schema }

// Fields of the payment; amount is positive cents, day the business day closed.
func (Payment) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuidType()).Unique().Immutable(),
		field.UUID("account_id", uuidType()).Immutable(),
		field.Int64("amount").Immutable(),
		field.String("day").Immutable(),
		field.UUID("entry_id", uuidType()).Immutable(),
		field.Int64("close_id").Immutable(),
		field.Time("created_at").Immutable(),
		field.Bool("email_sent").Default(false),
		field.Time("email_sent_at").Optional().Nillable(),
	}
}

// Indexes: an account's payments newest first.
func (Payment) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id")}
}
