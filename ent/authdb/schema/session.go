package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Session is a signed-in browser or client: a family of refresh tokens, each rotated into the
// next (R-SESS-1). It ends at logout, at a detected reuse, and when the account's password,
// role or active flag changes (R-SESS-2, R-SESS-3).
type Session struct{ ent.Schema }

// Fields of the session. ExpiresAt is its newest refresh token's expiry.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("public_id", uuid.UUID{}).Unique().Immutable(),
		field.UUID("account_id", uuid.UUID{}).Immutable(),
		field.Time("created_at").Immutable(),
		field.Time("expires_at"),
		field.Time("ended_at").Optional().Nillable(),
		field.String("end_reason").Optional(),
	}
}

// Indexes of the session: an account's sessions end together; the purge finds what expired.
func (Session) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id"), index.Fields("expires_at"), index.Fields("ended_at")}
}

// RefreshToken is one refresh token of a session, stored only as its SHA-256 (R-SESS-1).
type RefreshToken struct{ ent.Schema }

// Fields of the refresh token. UsedAt is set when it was rotated into the next one.
func (RefreshToken) Fields() []ent.Field {
	return []ent.Field{
		field.Bytes("token_hash").MinLen(32).MaxLen(32).Unique().Immutable().Sensitive(),
		field.UUID("session_id", uuid.UUID{}).Immutable(),
		field.Time("created_at").Immutable(),
		field.Time("expires_at").Immutable(),
		field.Time("used_at").Optional().Nillable(),
	}
}

// Indexes of the refresh token: a session's tokens go with it; the purge finds what expired.
func (RefreshToken) Indexes() []ent.Index {
	return []ent.Index{index.Fields("session_id"), index.Fields("expires_at")}
}
