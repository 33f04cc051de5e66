package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AccountDay is one account's ledger on one business day, summed: what its FEE, REWARD and
// PAYOUT entries of the day add up to and how many entries the day holds. It grows in the same
// transaction as the entries it sums, so it always equals them (R-ACC-3, R-ACC-5, R-ACC-9);
// reads of days, today's earnings and a day's entry count read it instead of the entries.
type AccountDay struct{ ent.Schema }

// Fields of the account's day; sums are signed integer cents (fees and payouts ≤ 0).
func (AccountDay) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("account_id", uuidType()).Immutable(),
		field.String("day").Immutable(),
		field.Int64("fees").Default(0),
		field.Int64("rewards").Default(0),
		field.Int64("payouts").Default(0),
		field.Int64("entries").Default(0),
	}
}

// Indexes: one row per account and day, found by the account and a range of days.
func (AccountDay) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("account_id", "day").Unique(),
	}
}

// CompanyDay is the company's FEE and REWARD entries of one business day, summed, kept in the
// entries' own transactions: the company's earnings of the day are −(fees + rewards) (R-ACC-6).
// Payouts do not change it.
type CompanyDay struct{ ent.Schema }

// Fields of the company's day; sums are signed integer cents (fees ≤ 0, rewards ≥ 0).
func (CompanyDay) Fields() []ent.Field {
	return []ent.Field{
		field.String("day").Unique().Immutable(),
		field.Int64("fees").Default(0),
		field.Int64("rewards").Default(0),
		field.Int64("entries").Default(0),
	}
}
