package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/signingkey"
	"github.com/uberpopug/ates/services/errs"
)

// Token issuer and audience (R-AUTH-4).
const (
	TokenIssuer   = "ates-auth"
	TokenAudience = "ates"
	// DefaultTokenTTL is the access token lifetime of R-AUTH-4.
	DefaultTokenTTL = time.Hour
)

// Claims are an access token's claims: subject = account public id, role, expiry, the account
// version the token was issued for (a later change outdates it) and the session it belongs to
// (a logout ends it, R-SESS-2).
type Claims struct {
	Role      string `json:"role"`
	Version   int64  `json:"ver"`
	SessionID string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// PublicKey is a token-verification key.
type PublicKey struct {
	ID  string
	Key ed25519.PublicKey
}

// signingKey is the key tokens are signed with.
type signingKey struct {
	id  string
	key ed25519.PrivateKey
}

// loadOrCreateKey returns the newest signing key, creating one on first start. The key is
// persisted so tokens survive restarts and every gateway verifies the same key (R-AUTH-4).
func loadOrCreateKey(ctx context.Context, c *authdb.Client) (signingKey, error) {
	k, err := c.SigningKey.Query().Order(authdb.Desc(signingkey.FieldCreatedAt), authdb.Desc(signingkey.FieldID)).First(ctx)
	if authdb.IsNotFound(err) {
		pub, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return signingKey{}, fmt.Errorf("auth: generating signing key: %w", gerr)
		}
		sum := sha256.Sum256(pub)
		kid := base64.RawURLEncoding.EncodeToString(sum[:12])
		k, err = c.SigningKey.Create().SetKid(kid).SetAlgorithm("EdDSA").
			SetPrivateKey(priv.Seed()).SetPublicKey(pub).Save(ctx)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("auth: loading signing key: %w", err)
	}
	return signingKey{id: k.Kid, key: ed25519.NewKeyFromSeed(k.PrivateKey)}, nil
}

// publicKeys lists every stored key's public half.
func publicKeys(ctx context.Context, c *authdb.Client) ([]PublicKey, error) {
	ks, err := c.SigningKey.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth: listing signing keys: %w", err)
	}
	out := make([]PublicKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, PublicKey{ID: k.Kid, Key: ed25519.PublicKey(k.PublicKey)})
	}
	return out, nil
}

// sign issues an access token for the account in the session (uuid.Nil: none).
func (k signingKey) sign(a Account, session uuid.UUID, now time.Time, ttl time.Duration) (string, time.Time, error) {
	exp := now.Add(ttl).Truncate(time.Second)
	claims := Claims{
		Role:    string(a.Role),
		Version: a.Version,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    TokenIssuer,
			Subject:   a.ID.String(),
			Audience:  jwt.ClaimStrings{TokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        uuid.NewString(),
		},
	}
	if session != uuid.Nil {
		claims.SessionID = session.String()
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = k.id
	s, err := t.SignedString(k.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: signing token: %w", err)
	}
	return s, exp.UTC(), nil
}

// JWKS renders public keys as a JSON Web Key Set (RFC 8037 OKP keys), served at
// /.well-known/jwks.json (R-AUTH-4).
func JWKS(keys []PublicKey) ([]byte, error) {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range keys {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Key), Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	return json.Marshal(set)
}

// Why a token is refused: RefusalReason's answers, for security.TokenRefused records (R-SEC-7).
const (
	RefusedInvalid        = "invalid"
	RefusedExpired        = "expired"
	RefusedLifetime       = "lifetime"
	RefusedUnknownAccount = "unknown_account"
	RefusedDeactivated    = "deactivated"
	RefusedOutdated       = "outdated"
	RefusedSessionEnded   = "session_ended"
	RefusedUnavailable    = "unavailable"
)

// refusal is a refused token: a coded error (the client reads its message) with a short
// reason (the gateway records it).
type refusal struct {
	reason string
	err    *errs.Error
}

func (r *refusal) Error() string { return r.err.Message }
func (r *refusal) Unwrap() error { return r.err }

func refuse(reason, msg string) error {
	return &refusal{reason: reason, err: errs.E(errs.Unauthenticated, "%s", msg)}
}

// RefusalReason returns why the verifier refused a token (one of the Refused… constants), or
// "" when err is not a token refusal.
func RefusalReason(err error) string {
	var r *refusal
	if errors.As(err, &r) {
		return r.reason
	}
	return ""
}

// The refusals, one message per reason (R-SEC-1, R-SEC-4, R-AUTH-5).
func errTokenInvalid() error { return refuse(RefusedInvalid, "the access token is invalid") }
func errTokenExpired() error {
	return refuse(RefusedExpired, "the access token has expired; log in again")
}
func errTokenLifetime() error {
	return refuse(RefusedLifetime, "the access token lives longer than this server allows; log in again")
}
func errTokenUnknown() error {
	return refuse(RefusedUnknownAccount, "the access token's account is unknown; log in again")
}
func errTokenInactive() error { return refuse(RefusedDeactivated, "the account is deactivated") }
func errTokenOutdated() error {
	return refuse(RefusedOutdated, "the account changed since this token was issued; log in again")
}
func errTokenSessionEnd() error {
	return refuse(RefusedSessionEnded, "the session of this token has ended; log in again")
}
