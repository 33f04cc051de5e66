// Package schema holds the auth context's Ent schema.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/google/uuid"
)

// Account is an employee's single sign-on account (R-AUTH-1).
type Account struct{ ent.Schema }

// Fields of the account. Version grows with every change, so replicas can order events.
func (Account) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuid.UUID{}).Default(uuid.New).Unique().Immutable(),
		field.String("username").Unique().Immutable(),
		field.String("email"),
		field.String("full_name"),
		field.Enum("role").Values("ADMIN", "MANAGER", "ACCOUNTANT", "WORKER"),
		field.Bool("active").Default(true),
		field.String("password_hash").Sensitive(),
		field.Int64("version").Default(1),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("updated_at").Default(time.Now),
		// SearchText is username, full name and email, lower-cased and joined by line feeds:
		// what Search looks in (a trigram index on PostgreSQL; auth.Migrate).
		field.String("search_text").Default(""),
	}
}
