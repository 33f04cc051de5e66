// Package auth is the single sign-on context of aTES (R-AUTH-1…6, R-SESS-1…3): accounts and
// their roles, sign-up and admin account management, login with a beak print hashed by
// argon2id through a bounded hasher, login throttling by username and client, sessions with
// rotated refresh tokens, EdDSA access tokens verified locally by everyone else, and the
// account and session events other contexts and gateways keep their state from.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// Producer is the producer name on the auth context's events.
const Producer = "auth"

// DefaultSessionTTL is how long a refresh token stays valid unless configured (R-SESS-1);
// every refresh issues a new one for as long again.
const DefaultSessionTTL = 30 * 24 * time.Hour

// DefaultReuseGrace is how long after its rotation a refresh token presented again is taken
// for a concurrent refresh of the same browser (refused, the session kept) rather than a reuse
// (the session ended); docs/decisions.md.
const DefaultReuseGrace = 10 * time.Second

// purgeEvery is how often, at most, a service deletes expired throttle records and sessions
// on the way of a login; purgeBatch bounds what one purge deletes of each.
const (
	purgeEvery = time.Minute
	purgeBatch = 1000
)

// Account is an employee's account as the rest of aTES sees it (no credential).
type Account struct {
	ID        uuid.UUID
	Username  string
	Email     string
	FullName  string
	Role      identity.Role
	Active    bool
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Session is a successful login, sign-up or refresh: an access token, its account, and the
// session's refresh token (R-SESS-1), which the gateway keeps in an HttpOnly cookie and the
// auth database keeps only as a hash.
type Session struct {
	Token     string
	ExpiresAt time.Time
	Account   Account
	// SessionID is the session (the refresh-token family); access tokens carry it as "sid".
	SessionID uuid.UUID
	// RefreshToken is 32 random bytes, base64url; it works once (Refresh rotates it).
	RefreshToken     string
	RefreshExpiresAt time.Time
}

// Config holds the service's dependencies and settings; Client, Outbox, Clock and Logger are
// required, every other field has a default.
type Config struct {
	Client *authdb.Client
	Outbox *outbox.Writer
	Clock  func() time.Time
	Logger *slog.Logger
	// Notify is called after a commit that stored events (wakes the outbox relay).
	Notify   func()
	Argon2   Argon2Params
	Throttle ThrottlePolicy
	// TokenTTL is the access tokens' lifetime (DefaultTokenTTL).
	TokenTTL time.Duration
	// SessionTTL is a refresh token's lifetime (DefaultSessionTTL).
	SessionTTL time.Duration
	// ReuseGrace: see DefaultReuseGrace; negative means none.
	ReuseGrace time.Duration
	// MaxConcurrentHashes bounds the argon2id computations running at once
	// (DefaultMaxConcurrentHashes); MaxQueuedHashes the calls waiting for one (8 times the
	// concurrency). Beyond both a call is refused with UNAVAILABLE (R-SEC-2).
	MaxConcurrentHashes int
	MaxQueuedHashes     int
}

// Service implements the auth context's use cases.
type Service struct {
	client     *authdb.Client
	outbox     *outbox.Writer
	now        func() time.Time
	log        *slog.Logger
	notify     func()
	throttle   ThrottlePolicy
	ttl        time.Duration
	sessionTTL time.Duration
	reuseGrace time.Duration
	hasher     *hasher
	key        signingKey
	// dummyHash is verified against when a username is unknown, so timing does not tell.
	dummyHash string
	// lastPurge is the Unix nanoseconds of the last purge of expired records.
	lastPurge atomic.Int64
}

// New returns the service, loading (or creating on first start) the token-signing key.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Client == nil || cfg.Outbox == nil || cfg.Clock == nil || cfg.Logger == nil {
		return nil, errors.New("auth: New needs a client, an outbox writer, a clock and a logger")
	}
	s := &Service{
		client: cfg.Client, outbox: cfg.Outbox, now: cfg.Clock, log: cfg.Logger, notify: cfg.Notify,
		throttle: cfg.Throttle, ttl: cfg.TokenTTL, sessionTTL: cfg.SessionTTL, reuseGrace: cfg.ReuseGrace,
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	params := cfg.Argon2
	if params == (Argon2Params{}) {
		params = DefaultArgon2
	}
	if s.throttle == (ThrottlePolicy{}) {
		s.throttle = DefaultThrottle
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if s.sessionTTL <= 0 {
		s.sessionTTL = DefaultSessionTTL
	}
	switch {
	case s.reuseGrace == 0:
		s.reuseGrace = DefaultReuseGrace
	case s.reuseGrace < 0:
		s.reuseGrace = 0
	}
	concurrency := cfg.MaxConcurrentHashes
	if concurrency <= 0 {
		concurrency = DefaultMaxConcurrentHashes()
	}
	queue := cfg.MaxQueuedHashes
	if queue <= 0 {
		queue = 8 * concurrency
	}
	s.hasher = newHasher(params, concurrency, queue, s.log)
	var err error
	if s.key, err = loadOrCreateKey(ctx, cfg.Client); err != nil {
		return nil, err
	}
	if s.dummyHash, err = s.hasher.hash(ctx, "start", uuid.NewString()); err != nil {
		return nil, err
	}
	return s, nil
}

// PublicKeys returns the token-verification keys, for the JWKS and for verifiers.
func (s *Service) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	return publicKeys(ctx, s.client)
}

// TokenTTL is the lifetime of the access tokens the service issues: the longest a verifier
// should accept (VerifierConfig.MaxLifetime).
func (s *Service) TokenTTL() time.Duration { return s.ttl }

func (s *Service) inTx(ctx context.Context, fn func(tx *authdb.Tx) error) error {
	return storage.InTx(ctx, s.client.Tx, fn)
}

func toAccount(a *authdb.Account) Account {
	return Account{
		ID: a.PublicID, Username: a.Username, Email: a.Email, FullName: a.FullName,
		Role: identity.Role(a.Role), Active: a.Active, Version: a.Version,
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(),
	}
}

// errorf wraps a storage error with what was being done; the gateway shows it as "internal
// error" and logs the detail.
func errorf(doing string, err error) error { return fmt.Errorf("auth: %s: %w", doing, err) }
