// Package schema holds the accounting context's Ent schema.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Account is a popug's billing account and accounting's replica of the auth account (R-ACC-5).
// It exists from the moment accounting hears of the account — from an account event, or from
// a task event naming it before its account event arrived (version 0 until then).
type Account struct{ ent.Schema }

// Fields of the billing account. Balance is integer cents and always equals the sum of the
// account's entries (R-ACC-3); entry_count is how many entries it has, grown with each.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuidType()).Unique().Immutable(),
		field.String("username").Default(""),
		field.String("email").Default(""),
		field.String("full_name").Default(""),
		field.String("role").Default(""),
		field.Bool("active").Default(true),
		field.Int64("version").Default(0),
		field.Int64("balance").Default(0),
		field.Int64("entry_count").Default(0),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}
