package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// How long an unknown account's lookup answer is remembered, and how long a lookup may take.
const (
	unknownAccountTTL  = 5 * time.Second
	unknownAccounts    = 4096
	lookupTimeout      = 2 * time.Second
	lookupRetrySeconds = 1
)

// AccountLookup reads an account's current state from the auth database: found is false when
// there is no such account (Service.LookupAccount).
type AccountLookup func(ctx context.Context, id uuid.UUID) (state AccountState, found bool, err error)

// VerifierConfig is what a gateway's verifier needs; Keys, Revocations and Clock are required.
type VerifierConfig struct {
	Keys        []PublicKey
	Revocations *Revocations
	Clock       func() time.Time
	// MaxLifetime is the longest lifetime (expiry − issue) a token may have: the access-token
	// TTL the auth service issues with (DefaultTokenTTL when zero). A longer-lived token was
	// not issued by this configuration and is refused.
	MaxLifetime time.Duration
	// Lookup is asked about an account the revocations do not know yet (signed up through
	// another gateway a moment ago); its answer is remembered. Nil: such tokens are refused.
	Lookup AccountLookup
}

// Verifier checks access tokens locally with the public keys (R-AUTH-4) and refuses tokens of
// unknown or deactivated accounts, tokens outdated by a later account change (R-AUTH-5),
// tokens of ended sessions (R-SESS-2, R-SESS-3) and tokens living longer than issued (R-SEC-1).
type Verifier struct {
	keys        map[string]ed25519.PublicKey
	revocations *Revocations
	now         func() time.Time
	maxLifetime time.Duration
	lookup      AccountLookup
	verified    tokenCache
	unknown     *expiringSet
}

// NewVerifier returns a verifier; its revocations may be shared with an event feed.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("auth: verifier needs at least one public key")
	}
	if cfg.Revocations == nil || cfg.Clock == nil {
		return nil, errors.New("auth: verifier needs revocations and a clock")
	}
	m := make(map[string]ed25519.PublicKey, len(cfg.Keys))
	for _, k := range cfg.Keys {
		m[k.ID] = k.Key
	}
	max := cfg.MaxLifetime
	if max <= 0 {
		max = DefaultTokenTTL
	}
	return &Verifier{
		keys: m, revocations: cfg.Revocations, now: cfg.Clock, maxLifetime: max, lookup: cfg.Lookup,
		verified: newTokenCache(verifiedTokens, verifiedTokenTTL),
		unknown:  newExpiringSet(unknownAccounts, unknownAccountTTL),
	}, nil
}

// Token is what a valid access token establishes.
type Token struct {
	Actor identity.Actor
	// SessionID is the token's session; uuid.Nil for a token issued without one.
	SessionID uuid.UUID
	// Version is the account version the token was issued for.
	Version   int64
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Verify returns the actor of a valid token, or an Unauthenticated error saying why not (see
// VerifyToken).
func (v *Verifier) Verify(token string) (identity.Actor, error) {
	t, err := v.VerifyToken(token)
	if err != nil {
		return identity.Actor{}, err
	}
	return t.Actor, nil
}

// VerifyToken returns what a valid token establishes, or an Unauthenticated error saying why
// it is refused (RefusalReason tells the reason; UNAVAILABLE when an unknown account could not
// be looked up).
//
// A token whose signature and claims were verified is remembered for a short while
// (tokenCache), so a client's next requests skip the Ed25519 check; the account and session
// are checked on every call all the same, so a deactivation, a role change or a logout refuses
// a remembered token as soon as it is known (R-AUTH-5, R-SEC-1).
func (v *Verifier) VerifyToken(token string) (Token, error) {
	now := v.now()
	t, ok := v.verified.get(token, now)
	if !ok {
		var err error
		if t, err = v.parse(token, now); err != nil {
			return Token{}, err
		}
		v.verified.put(token, t, now)
	}
	if err := v.check(t, now); err != nil {
		return Token{}, err
	}
	return t, nil
}

// parse checks the token's signature and claims.
func (v *Verifier) parse(token string, now time.Time) (Token, error) {
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
		return Token{}, errTokenExpired()
	case err != nil:
		return Token{}, errTokenInvalid()
	}
	if c.IssuedAt == nil {
		return Token{}, errTokenInvalid()
	}
	if c.ExpiresAt.Sub(c.IssuedAt.Time) > v.maxLifetime {
		return Token{}, errTokenLifetime()
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil {
		return Token{}, errTokenInvalid()
	}
	role, err := identity.ParseRole(c.Role)
	if err != nil {
		return Token{}, errTokenInvalid()
	}
	var sid uuid.UUID
	if c.SessionID != "" {
		if sid, err = uuid.Parse(c.SessionID); err != nil || sid == uuid.Nil {
			return Token{}, errTokenInvalid()
		}
	}
	return Token{
		Actor: identity.Actor{AccountID: id, Role: role}, SessionID: sid, Version: c.Version,
		IssuedAt: c.IssuedAt.UTC(), ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// check refuses a verified token whose account or session no longer allows it.
func (v *Verifier) check(t Token, now time.Time) error {
	st, known := v.revocations.Account(t.Actor.AccountID)
	if !known {
		var err error
		if st, err = v.lookUp(t.Actor.AccountID, now); err != nil {
			return err
		}
	}
	switch {
	case !st.Active:
		return errTokenInactive()
	case t.Version < st.Version:
		return errTokenOutdated()
	case t.SessionID != uuid.Nil && v.revocations.SessionEnded(t.SessionID):
		return errTokenSessionEnd()
	}
	return nil
}

// lookUp asks the auth database about an account the revocations do not know, remembering a
// "no such account" for a few seconds so a stream of such tokens costs one query.
func (v *Verifier) lookUp(id uuid.UUID, now time.Time) (AccountState, error) {
	if v.lookup == nil || v.unknown.has(id, now) {
		return AccountState{}, errTokenUnknown()
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	st, found, err := v.lookup(ctx, id)
	if err != nil {
		return AccountState{}, &refusal{reason: RefusedUnavailable,
			err: errs.Retryable(lookupRetrySeconds, "the access token's account cannot be checked right now; try again")}
	}
	if !found {
		v.unknown.add(id, now)
		return AccountState{}, errTokenUnknown()
	}
	// The revocations may have learnt a newer state meanwhile; the newest wins.
	v.revocations.observe(id, st)
	st, _ = v.revocations.Account(id)
	return st, nil
}
