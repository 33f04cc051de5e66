package auth

import (
	"context"
	"math"
	"time"
	"unicode/utf8"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/security"
)

// The answer to a wrong username or beak print: the same for both (R-SEC-4).
const wrongCredentials = "wrong username or beak print"

// Login checks a username and beak print from client — the caller's network address as the
// gateway determined it, "" when unknown (see ClientKey) — and starts a session: an access
// token and a refresh token (R-AUTH-4, R-SESS-1). Deactivated accounts cannot log in
// (R-AUTH-5). Attempts are throttled by username, by client and by both, counted before the
// beak print is checked (R-SEC-3); a refused attempt answers UNAUTHENTICATED with
// Meta["retryAfter"]. When too many beak prints are being hashed it answers UNAVAILABLE with
// retryAfter and counts nothing (R-SEC-2).
func (s *Service) Login(ctx context.Context, username, password, client string) (Session, error) {
	client = ClientKey(client)
	defer s.purgeSometimes(ctx)
	row, keys, err := s.checkBeakPrint(ctx, "login", username, password, client)
	if err != nil {
		return Session{}, err
	}
	if !row.Active {
		// The right beak print: the attempt is settled as a success, but no session starts.
		if err := s.inTx(ctx, func(tx *authdb.Tx) error { return s.settleAttempt(ctx, tx, keys, s.throttle.succeeded) }); err != nil {
			return Session{}, err
		}
		security.Record(ctx, s.log, security.LoginFailed, "login of a deactivated account refused", "username", username, "client", client)
		return Session{}, errs.E(errs.Unauthenticated, "the account is deactivated")
	}
	return s.startSession(ctx, toAccount(row), func(tx *authdb.Tx) error {
		return s.settleAttempt(ctx, tx, keys, s.throttle.succeeded)
	})
}

// plausiblePassword reports whether a beak print could be any account's: every stored one was
// 8–128 characters of UTF-8 when it was set.
func plausiblePassword(p string) bool {
	if len(p) > 4*MaxPasswordLen || !utf8.ValidString(p) {
		return false
	}
	n := utf8.RuneCountInString(p)
	return n >= MinPasswordLen && n <= MaxPasswordLen
}

// checkBeakPrint is the throttled check of a username's beak print from a client (a login, or
// a password change's current beak print), in the order that keeps both bounds (R-SEC-2,
// R-SEC-3):
//
//  1. an impossible username or beak print is refused at once, storing nothing: no such
//     account can exist, so the answer's speed tells nothing;
//  2. when the hasher is full the call is refused before anything is counted;
//  3. the attempt is counted (or refused) in one transaction, before any hash;
//  4. a hasher slot is taken — when there is none after all, the attempt is given back;
//  5. the beak print is checked against the account's hash, or against a dummy hash for an
//     unknown username, so unknown usernames cost the same time.
//
// It returns the account when the beak print is right; the caller settles the attempt.
func (s *Service) checkBeakPrint(ctx context.Context, op, username, password, client string) (*authdb.Account, limitKeys, error) {
	if validateUsername(username) != nil || !plausiblePassword(password) {
		security.Record(ctx, s.log, security.LoginFailed, "beak print check refused: no account can match",
			"operation", op, "username", printable(username), "client", client)
		return nil, limitKeys{}, errs.E(errs.Unauthenticated, wrongCredentials)
	}
	if s.hasher.full() {
		return nil, limitKeys{}, s.hasher.overloaded(ctx, op)
	}
	keys := keysFor(username, client)
	wait, err := s.countAttempt(ctx, keys)
	if err != nil {
		return nil, keys, err
	}
	if wait > 0 {
		secs := retryAfter(wait)
		security.Record(ctx, s.log, security.LoginThrottled, "beak print check throttled",
			"operation", op, "username", username, "client", client, "retryAfter", secs)
		e := errs.E(errs.Unauthenticated, "too many failed logins; try again in %d seconds", secs)
		e.Meta = map[string]any{"retryAfter": secs}
		return nil, keys, e
	}
	row, err := s.client.Account.Query().Where(account.Username(username)).Only(ctx)
	if err != nil && !authdb.IsNotFound(err) {
		return nil, keys, s.giveBack(ctx, keys, errorf("loading account", err))
	}
	release, err := s.hasher.acquire(ctx, op)
	if err != nil {
		return nil, keys, s.giveBack(ctx, keys, err)
	}
	hash := s.dummyHash
	if row != nil {
		hash = row.PasswordHash
	}
	ok, err := s.hasher.verifyHeld(hash, password)
	release()
	if err != nil {
		return nil, keys, errorf("checking a beak print", err)
	}
	if row == nil || !ok {
		security.Record(ctx, s.log, security.LoginFailed, "wrong username or beak print",
			"operation", op, "username", username, "client", client)
		return nil, keys, errs.E(errs.Unauthenticated, wrongCredentials)
	}
	return row, keys, nil
}

// giveBack returns an attempt that was counted but not checked, then err.
func (s *Service) giveBack(ctx context.Context, keys limitKeys, err error) error {
	ctx = context.WithoutCancel(ctx) // a caller that gave up still gives its attempt back
	gerr := s.inTx(ctx, func(tx *authdb.Tx) error {
		return s.settleAttempt(ctx, tx, keys, s.throttle.givenBack)
	})
	if gerr != nil {
		s.log.WarnContext(ctx, "auth: giving a login attempt back", "error", gerr)
	}
	return err
}

// printable bounds a refused username for a log line: at most 64 bytes of valid UTF-8.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s
}

// purgeSometimes deletes expired throttle records and sessions, at most once per purgeEvery
// per service instance, on the way of a login (R-SEC-3).
func (s *Service) purgeSometimes(ctx context.Context) {
	now := s.now()
	last := s.lastPurge.Load()
	if now.UnixNano()-last < int64(purgeEvery) || !s.lastPurge.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if _, err := s.Purge(context.WithoutCancel(ctx)); err != nil {
		s.log.WarnContext(ctx, "auth: purging expired records", "error", err)
	}
}

// Purged counts what one Purge deleted.
type Purged struct {
	ThrottleRecords int
	Sessions        int
	RefreshTokens   int
}

// Purge deletes, up to a bounded number of each, throttle records whose window and block are
// over, and sessions and refresh tokens no token can use any more (R-SEC-3, R-SESS-1). Login
// calls it at most once a minute; an operator may call it too.
func (s *Service) Purge(ctx context.Context) (Purged, error) {
	now := s.now().UTC()
	var p Purged
	var err error
	if p.ThrottleRecords, err = purgeLimits(ctx, s.client, now); err != nil {
		return p, errorf("purging login throttle records", err)
	}
	if p.Sessions, p.RefreshTokens, err = s.purgeSessions(ctx, now); err != nil {
		return p, err
	}
	return p, nil
}

// retryAfter is the whole seconds to wait for d (at least 1).
func retryAfter(d time.Duration) int { return max(int(math.Ceil(d.Seconds())), 1) }
