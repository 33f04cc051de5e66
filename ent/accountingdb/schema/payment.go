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
		// The payment is its own email job, committed with the payout: sent at least once
		// after it commits, retried with backoff while the mail server refuses (R-ACC-8).
		// email_next_attempt_at is when the mailer may take it next (set by the close).
		field.Int("email_attempts").Default(0),
		field.Time("email_next_attempt_at").Optional().Nillable(),
		field.Text("email_last_error").Default(""),
	}
}

// Indexes: an account's payments newest first; the mailer's due, unsent emails.
func (Payment) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id"),
		index.Fields("email_sent", "email_next_attempt_at"),
	}
}
