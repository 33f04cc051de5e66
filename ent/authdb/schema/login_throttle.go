package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// LoginThrottle counts recent failed logins of one username (R-AUTH-4).
type LoginThrottle struct{ ent.Schema }

// Fields of the throttle record.
func (LoginThrottle) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").Unique().Immutable(),
		field.Int("failures"),
		field.Time("window_started_at"),
		field.Time("blocked_until").Optional().Nillable(),
	}
}
