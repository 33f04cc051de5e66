package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LoginLimit counts recent login attempts under one throttle key — a username, a client
// address, or the pair — and the block they earned (R-AUTH-4, R-SEC-3). Keys are bounded in
// length and a record is deleted once its window and block are over (ExpiresAt).
type LoginLimit struct{ ent.Schema }

// Fields of the throttle record.
func (LoginLimit) Fields() []ent.Field {
	return []ent.Field{
		field.String("key").MaxLen(96).Unique().Immutable(),
		field.Int("failures"),
		field.Time("window_started_at"),
		field.Time("blocked_until").Optional().Nillable(),
		field.Time("expires_at"),
	}
}

// Indexes of the throttle record: the purge finds what expired.
func (LoginLimit) Indexes() []ent.Index {
	return []ent.Index{index.Fields("expires_at")}
}
