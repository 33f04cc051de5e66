package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LedgerEntry is one accounting ledger entry as balance.changed announced it (R-ACC-3). Its
// unique entry id makes applying an announcement twice harmless; management earnings of a day
// are summed from the day's FEE and REWARD entries (R-ACC-6, R-AN-2).
type LedgerEntry struct{ ent.Schema }

// Fields of the entry: signed cents, the business day as YYYY-MM-DD (R-ACC-7), and sequence,
// the ledger's order of the account's entries.
func (LedgerEntry) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("entry_id", uuidType()).Unique().Immutable(),
		field.UUID("account_id", uuidType()).Immutable(),
		field.Enum("type").Values("FEE", "REWARD", "PAYOUT").Immutable(),
		field.Int64("amount").Immutable(),
		field.Int64("balance_after").Immutable(),
		field.Int64("sequence").Immutable(),
		field.String("day").Immutable(),
		field.Time("occurred_at").Immutable(),
	}
}

// Indexes: a day's earnings are read from the (day, type, amount) index alone.
func (LedgerEntry) Indexes() []ent.Index {
	return []ent.Index{index.Fields("day", "type", "amount")}
}
