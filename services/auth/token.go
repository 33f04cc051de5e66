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
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/signingkey"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
)

// Token issuer and audience (R-AUTH-4).
const (
	TokenIssuer   = "ates-auth"
	TokenAudience = "ates"
	// DefaultTokenTTL is the access token lifetime of R-AUTH-4.
	DefaultTokenTTL = time.Hour
)

// Claims are an access token's claims: subject = account public id, role, expiry, and the
// account version the token was issued for (a later role change or deactivation outdates it).
type Claims struct {
	Role    string `json:"role"`
	Version int64  `json:"ver"`
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

// sign issues an access token for the account.
func (k signingKey) sign(a Account, now time.Time, ttl time.Duration) (string, time.Time, error) {
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

// Verifier checks access tokens locally with the public keys (R-AUTH-4) and refuses tokens of
// deactivated accounts and tokens outdated by a later account change (R-AUTH-5).
type Verifier struct {
	keys        map[string]ed25519.PublicKey
	revocations *Revocations
	now         func() time.Time
	verified    tokenCache
}

// NewVerifier returns a verifier over the keys; revocations may be shared with an event feed.
func NewVerifier(keys []PublicKey, revocations *Revocations, now func() time.Time) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: verifier needs at least one public key")
	}
	if revocations == nil || now == nil {
		return nil, errors.New("auth: verifier needs revocations and a clock")
	}
	m := make(map[string]ed25519.PublicKey, len(keys))
	for _, k := range keys {
		m[k.ID] = k.Key
	}
	return &Verifier{keys: m, revocations: revocations, now: now, verified: newTokenCache(verifiedTokens, verifiedTokenTTL)}, nil
}

// Verify returns the actor of a valid token, or an Unauthenticated error saying why not.
//
// A token whose signature and claims were verified is remembered for a short while
// (tokenCache), so a client's next requests skip the Ed25519 check; the revocations are checked
// on every call all the same, so a deactivation or a role change refuses a remembered token as
// soon as it is known (R-AUTH-5).
func (v *Verifier) Verify(token string) (identity.Actor, error) {
	now := v.now()
	if t, ok := v.verified.get(token, now); ok {
		if err := v.revocations.check(t.actor.AccountID, t.version); err != nil {
			return identity.Actor{}, err
		}
		return t.actor, nil
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := v.keys[kid]
		if !ok {
			return nil, errors.New("unknown signing key")
		}
		return k, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(TokenIssuer), jwt.WithAudience(TokenAudience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return identity.Actor{}, errs.E(errs.Unauthenticated, "the access token has expired; log in again")
	case err != nil:
		return identity.Actor{}, errs.E(errs.Unauthenticated, "the access token is invalid")
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil {
		return identity.Actor{}, errs.E(errs.Unauthenticated, "the access token is invalid")
	}
	role, err := identity.ParseRole(c.Role)
	if err != nil {
		return identity.Actor{}, errs.E(errs.Unauthenticated, "the access token is invalid")
	}
	a := identity.Actor{AccountID: id, Role: role}
	v.verified.put(token, verifiedToken{actor: a, version: c.Version, from: now, until: c.ExpiresAt.Time}, now)
	if err := v.revocations.check(id, c.Version); err != nil {
		return identity.Actor{}, err
	}
	return a, nil
}

// Revocations is what a gateway knows of account changes that invalidate tokens: which accounts
// are deactivated and which account version is current. It is seeded at start and kept current
// by account events, so a deactivation reaches the gateway within the event latency (R-AUTH-5).
type Revocations struct {
	mu       sync.RWMutex
	accounts map[uuid.UUID]accountState
}

type accountState struct {
	version int64
	active  bool
}

// NewRevocations returns an empty set.
func NewRevocations() *Revocations {
	return &Revocations{accounts: map[uuid.UUID]accountState{}}
}

// Observe records an account's state at a version; older versions than known are ignored.
func (r *Revocations) Observe(id uuid.UUID, version int64, active bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.accounts[id]; ok && cur.version >= version {
		return
	}
	r.accounts[id] = accountState{version: version, active: active}
}

func (r *Revocations) check(id uuid.UUID, tokenVersion int64) error {
	r.mu.RLock()
	st, ok := r.accounts[id]
	r.mu.RUnlock()
	switch {
	case !ok:
		return nil
	case !st.active:
		return errs.E(errs.Unauthenticated, "the account is deactivated")
	case tokenVersion < st.version:
		return errs.E(errs.Unauthenticated, "the account changed since this token was issued; log in again")
	}
	return nil
}

// ApplyEvent keeps the set current from the account replication events (account.created,
// account.updated); other events are ignored.
func (r *Revocations) ApplyEvent(e event.Envelope) error {
	if e.Name != EventAccountCreated && e.Name != EventAccountUpdated {
		return nil
	}
	var d AccountData
	if err := e.DecodeData(&d); err != nil {
		return err
	}
	id, err := uuid.Parse(d.AccountID)
	if err != nil {
		return fmt.Errorf("auth: event %s: account id: %w", e.ID, err)
	}
	r.Observe(id, d.Version, d.Active)
	return nil
}
