package auth

import (
	"context"
	"fmt"
	"math"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/ent/authdb/loginthrottle"
	"github.com/uberpopug/ates/services/errs"
)

// Login checks a username and beak print and returns a signed access token (R-AUTH-4).
// Deactivated accounts cannot log in (R-AUTH-5); repeated failures are throttled.
func (s *Service) Login(ctx context.Context, username, password string) (Session, error) {
	now := s.now()
	st, err := s.throttleState(ctx, username)
	if err != nil {
		return Session{}, err
	}
	if wait := s.throttle.blockedFor(st, now); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		e := errs.E(errs.Unauthenticated, "too many failed logins for this username; try again in %d seconds", secs)
		e.Meta = map[string]any{"retryAfter": secs}
		return Session{}, e
	}
	a, err := s.client.Account.Query().Where(account.Username(username)).Only(ctx)
	if err != nil && !authdb.IsNotFound(err) {
		return Session{}, fmt.Errorf("auth: loading account: %w", err)
	}
	hash := s.dummyHash
	if a != nil {
		hash = a.PasswordHash
	}
	ok, err := verifyPassword(hash, password)
	if err != nil {
		return Session{}, err
	}
	if a == nil || !ok {
		if err := s.recordFailure(ctx, username); err != nil {
			return Session{}, err
		}
		return Session{}, errs.E(errs.Unauthenticated, "wrong username or beak print")
	}
	if !a.Active {
		return Session{}, errs.E(errs.Unauthenticated, "the account is deactivated")
	}
	if st.Failures > 0 {
		if _, err := s.client.LoginThrottle.Delete().Where(loginthrottle.Username(username)).Exec(ctx); err != nil {
			return Session{}, fmt.Errorf("auth: clearing login failures: %w", err)
		}
	}
	return s.session(toAccount(a))
}

func (s *Service) session(a Account) (Session, error) {
	tok, exp, err := s.key.sign(a, s.now(), s.ttl)
	if err != nil {
		return Session{}, err
	}
	return Session{Token: tok, ExpiresAt: exp, Account: a}, nil
}

func (s *Service) throttleState(ctx context.Context, username string) (throttleState, error) {
	t, err := s.client.LoginThrottle.Query().Where(loginthrottle.Username(username)).Only(ctx)
	if authdb.IsNotFound(err) {
		return throttleState{}, nil
	}
	if err != nil {
		return throttleState{}, fmt.Errorf("auth: loading login failures: %w", err)
	}
	return stateOf(t), nil
}

func stateOf(t *authdb.LoginThrottle) throttleState {
	st := throttleState{Failures: t.Failures, WindowStart: t.WindowStartedAt}
	if t.BlockedUntil != nil {
		st.BlockedUntil = *t.BlockedUntil
	}
	return st
}

// recordFailure counts one more failed login for the username. The record is locked (created
// when missing) before it is read, so failures of parallel logins are counted one after the
// other rather than overwriting each other: guessing in parallel must not escape the throttle.
func (s *Service) recordFailure(ctx context.Context, username string) error {
	now := s.now()
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		// A no-op upsert: inserts a fresh record, or locks the existing row (PostgreSQL); SQLite
		// transactions begin IMMEDIATE and are serialized anyway.
		err := tx.LoginThrottle.Create().SetUsername(username).SetFailures(0).SetWindowStartedAt(now).
			OnConflictColumns(loginthrottle.FieldUsername).Ignore().Exec(ctx)
		if err != nil {
			return err
		}
		t, err := tx.LoginThrottle.Query().Where(loginthrottle.Username(username)).Only(ctx)
		if err != nil {
			return err
		}
		st := s.throttle.afterFailure(stateOf(t), now)
		u := tx.LoginThrottle.UpdateOneID(t.ID).SetFailures(st.Failures).SetWindowStartedAt(st.WindowStart)
		if st.BlockedUntil.IsZero() {
			u.ClearBlockedUntil()
		} else {
			u.SetBlockedUntil(st.BlockedUntil)
		}
		return u.Exec(ctx)
	})
	if err != nil {
		return fmt.Errorf("auth: recording login failure: %w", err)
	}
	return nil
}
