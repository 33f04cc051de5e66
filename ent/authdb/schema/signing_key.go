package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// SigningKey is a token-signing key pair; the newest signs, all are published in the JWKS (R-AUTH-4).
type SigningKey struct{ ent.Schema }

// Fields of the signing key. The private key is the Ed25519 seed.
func (SigningKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("kid").Unique().Immutable(),
		field.String("algorithm").Immutable(),
		field.Bytes("private_key").Sensitive().Immutable(),
		field.Bytes("public_key").Immutable(),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}
