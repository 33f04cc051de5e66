package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Entry is one immutable line of an account's ledger (R-ACC-3): never updated, never deleted.
type Entry struct{ ent.Schema }

// Fields of the entry. Amount is signed integer cents; balance_after chains with the account's
// previous entry (entries of one account are applied in id order). Day is the business day of
// the assignment, completion or close (R-ACC-7) as YYYY-MM-DD. source_event_id makes a second
// entry for one event impossible (R-ACC-4).
func (Entry) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuidType()).Unique().Immutable(),
		field.UUID("account_id", uuidType()).Immutable(),
		field.Enum("type").Values("FEE", "REWARD", "PAYOUT").Immutable(),
		field.Int64("amount").Immutable(),
		field.Int64("balance_after").Immutable(),
		field.UUID("task_id", uuidType()).Optional().Nillable().Immutable(),
		field.Time("occurred_at").Immutable(),
		field.String("day").Immutable(),
		field.String("source_event_id").Unique().Immutable(),
	}
}

// Indexes for the audit log, newest first: of an account (account_id, id: a page is the index's
// first rows, however long the ledger) and of an account's day. The per-day figures read the
// rollups (AccountDay, CompanyDay), not the entries.
func (Entry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "id"),
		index.Fields("account_id", "day"),
	}
}
