// Package schema holds the task tracker's Ent schema.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Account is the task tracker's replica of an auth account, fed by account events only
// (R-AUTH-6): who exists, their role and whether they are active (R-TASK-3).
type Account struct{ ent.Schema }

// Fields of the replica; version is the auth account's version, so stale events are ignored.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuid.UUID{}).Unique().Immutable(),
		field.Enum("role").Values("ADMIN", "MANAGER", "ACCOUNTANT", "WORKER"),
		field.Bool("active"),
		field.Int64("version"),
	}
}

// Indexes: the random draw reads assignable accounts.
func (Account) Indexes() []ent.Index {
	return []ent.Index{index.Fields("active", "role")}
}
