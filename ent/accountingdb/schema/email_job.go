package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// EmailJob is a payment email to send, committed with the payout (an outbox of emails): sent at
// least once after the payout commits, retried with backoff while the mail server refuses (R-ACC-8).
type EmailJob struct{ ent.Schema }

// Fields of the job; the recipient is read from the account when sending.
func (EmailJob) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("payment_id", uuidType()).Unique().Immutable(),
		field.UUID("account_id", uuidType()).Immutable(),
		field.Int("attempts").Default(0),
		field.Time("next_attempt_at"),
		field.Text("last_error").Default(""),
		field.Time("sent_at").Optional().Nillable(),
	}
}

// Indexes: the mailer reads due, unsent jobs.
func (EmailJob) Indexes() []ent.Index {
	return []ent.Index{index.Fields("sent_at", "next_attempt_at")}
}
