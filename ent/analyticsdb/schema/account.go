package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Account is a popug's current balance as the ledger last announced it (R-AN-2): the
// balanceAfter of the account's entry with the highest ledger sequence seen so far, so events
// arriving out of order never move it back.
type Account struct{ ent.Schema }

// Fields of the account's balance; integer cents.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("account_id", uuidType()).Unique().Immutable(),
		field.Int64("sequence"),
		field.Int64("balance"),
	}
}
