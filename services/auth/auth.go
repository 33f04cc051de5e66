// Package auth is the single sign-on context of aTES (R-AUTH-1…6): accounts and their roles,
// sign-up and admin account management, login with a beak print hashed by argon2id, EdDSA
// access tokens verified locally by everyone else, login throttling, and the account events
// other contexts keep their replicas from.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// Producer is the producer name on the auth context's events.
const Producer = "auth"

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

// Session is a successful login or sign-up: an access token and its account.
type Session struct {
	Token     string
	ExpiresAt time.Time
	Account   Account
}

// Config holds the service's dependencies; every field but Notify, Argon2, Throttle and
// TokenTTL is required.
type Config struct {
	Client *authdb.Client
	Outbox *outbox.Writer
	Clock  func() time.Time
	Logger *slog.Logger
	// Notify is called after a commit that stored events (wakes the outbox relay).
	Notify   func()
	Argon2   Argon2Params
	Throttle ThrottlePolicy
	TokenTTL time.Duration
}

// Service implements the auth context's use cases.
type Service struct {
	client   *authdb.Client
	outbox   *outbox.Writer
	now      func() time.Time
	log      *slog.Logger
	notify   func()
	argon2   Argon2Params
	throttle ThrottlePolicy
	ttl      time.Duration
	key      signingKey
	// dummyHash is verified against when a username is unknown, so timing does not tell.
	dummyHash string
}

// New returns the service, loading (or creating on first start) the token-signing key.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Client == nil || cfg.Outbox == nil || cfg.Clock == nil || cfg.Logger == nil {
		return nil, errors.New("auth: New needs a client, an outbox writer, a clock and a logger")
	}
	s := &Service{
		client: cfg.Client, outbox: cfg.Outbox, now: cfg.Clock, log: cfg.Logger, notify: cfg.Notify,
		argon2: cfg.Argon2, throttle: cfg.Throttle, ttl: cfg.TokenTTL,
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.argon2 == (Argon2Params{}) {
		s.argon2 = DefaultArgon2
	}
	if s.throttle == (ThrottlePolicy{}) {
		s.throttle = DefaultThrottle
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	var err error
	if s.key, err = loadOrCreateKey(ctx, cfg.Client); err != nil {
		return nil, err
	}
	if s.dummyHash, err = hashPassword(s.argon2, uuid.NewString()); err != nil {
		return nil, err
	}
	return s, nil
}

// PublicKeys returns the token-verification keys, for the JWKS and for verifiers.
func (s *Service) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	return publicKeys(ctx, s.client)
}

// SeedRevocations loads every account whose earlier tokens are no longer valid (deactivated,
// or changed since creation), for a gateway that starts after such changes.
func (s *Service) SeedRevocations(ctx context.Context, r *Revocations) error {
	accs, err := s.client.Account.Query().All(ctx)
	if err != nil {
		return fmt.Errorf("auth: loading accounts: %w", err)
	}
	for _, a := range accs {
		if !a.Active || a.Version > 1 {
			r.Observe(a.PublicID, a.Version, a.Active)
		}
	}
	return nil
}

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
