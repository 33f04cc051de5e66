package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
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

// Indexes for the audit log by account and day, and the company figures by day. The company
// figures sum FEE and REWARD entries only (R-ACC-6), so their index holds only those: a close's
// payouts — 100 000 entries of one day and type in one sweep — add nothing to it.
func (Entry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "day"),
		index.Fields("day", "type").StorageKey("entry_earnings_day_type").
			Annotations(entsql.IndexWhere("type IN ('FEE', 'REWARD')")),
	}
}
