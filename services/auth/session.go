package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/ent/authdb/refreshtoken"
	"github.com/uberpopug/ates/ent/authdb/session"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/security"
)

// refreshTokenBytes is a refresh token's entropy; maxRefreshTokenLen bounds what is looked up.
const (
	refreshTokenBytes  = 32
	maxRefreshTokenLen = 64
)

// lockedOnPostgres is a query predicate that locks the selected rows (SELECT … FOR UPDATE) on
// PostgreSQL; a SQLite transaction holds the database's write lock from its start.
func lockedOnPostgres(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

// newRefreshToken returns a fresh refresh token and the SHA-256 it is stored as: the token is
// 256 random bits, so a fast hash is enough (nothing to guess from it).
func newRefreshToken() (string, []byte) {
	b := make([]byte, refreshTokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashRefreshToken(tok)
}

func hashRefreshToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// startSession starts a session for the account — its first refresh token and an access
// token carrying its id — in one transaction with also (the login's throttle settlement).
func (s *Service) startSession(ctx context.Context, a Account, also func(tx *authdb.Tx) error) (Session, error) {
	now := s.now().UTC()
	sid := uuid.New()
	tok, hash := newRefreshToken()
	exp := now.Add(s.sessionTTL)
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		if also != nil {
			if err := also(tx); err != nil {
				return err
			}
		}
		if err := tx.Session.Create().SetPublicID(sid).SetAccountID(a.ID).SetCreatedAt(now).SetExpiresAt(exp).Exec(ctx); err != nil {
			return errorf("starting a session", err)
		}
		if err := tx.RefreshToken.Create().SetTokenHash(hash).SetSessionID(sid).SetCreatedAt(now).SetExpiresAt(exp).Exec(ctx); err != nil {
			return errorf("storing a refresh token", err)
		}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	return s.issue(a, sid, tok, exp, now)
}

// issue signs an access token for the account in the session.
func (s *Service) issue(a Account, sid uuid.UUID, refresh string, refreshExp, now time.Time) (Session, error) {
	tok, exp, err := s.key.sign(a, sid, now, s.ttl)
	if err != nil {
		return Session{}, err
	}
	return Session{Token: tok, ExpiresAt: exp, Account: a, SessionID: sid, RefreshToken: refresh, RefreshExpiresAt: refreshExp}, nil
}

// The refusals of Refresh: the gateway clears the refresh cookie on any of them.
func errSessionUnknown() error {
	return errs.E(errs.Unauthenticated, "the session has ended or is unknown; log in again")
}
func errSessionExpired() error {
	return errs.E(errs.Unauthenticated, "the session has expired; log in again")
}
func errSessionReused() error {
	return errs.E(errs.Unauthenticated, "this refresh token was already used, so the session was ended to be safe; log in again")
}
func errSessionRaced() error {
	return errs.E(errs.Unauthenticated, "this refresh token was just used by another request; use the newest one")
}

// Refresh rotates a refresh token (R-SESS-1): a valid, unused token is marked used and a new
// one of the same session is issued with an access token for the account's current role and
// version. Of concurrent refreshes with one token exactly one wins. A token that was rotated
// before is a reuse — someone holds a copy — and the whole session ends (OAuth 2.0 Security
// BCP), unless it comes within the reuse grace of its rotation, when it is only refused (two
// tabs refreshing at once). An inactive account's session ends and is refused.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	if refreshToken == "" || len(refreshToken) > maxRefreshTokenLen {
		s.refusedRefresh(ctx, "malformed")
		return Session{}, errSessionUnknown()
	}
	hash := hashRefreshToken(refreshToken)
	now := s.now().UTC()
	var (
		out     Session
		acc     Account
		refusal error
		why     string
		ended   *endedRecord
	)
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		rt, err := tx.RefreshToken.Query().Where(refreshtoken.TokenHash(hash), lockedOnPostgres).Only(ctx)
		if authdb.IsNotFound(err) {
			refusal, why = errSessionUnknown(), "unknown"
			return nil
		}
		if err != nil {
			return errorf("reading a refresh token", err)
		}
		sess, err := tx.Session.Query().Where(session.PublicID(rt.SessionID), lockedOnPostgres).Only(ctx)
		if authdb.IsNotFound(err) {
			refusal, why = errSessionUnknown(), "unknown"
			return nil
		}
		if err != nil {
			return errorf("reading a session", err)
		}
		switch {
		case sess.EndedAt != nil:
			refusal, why = errSessionUnknown(), "ended"
			return nil
		case rt.UsedAt != nil && now.Sub(*rt.UsedAt) <= s.reuseGrace:
			refusal, why = errSessionRaced(), "raced"
			return nil
		case rt.UsedAt != nil:
			refusal, why = errSessionReused(), "reused"
			ended, err = s.endSession(ctx, tx, sess, contract.SessionEndedReused, now)
			return err
		case !now.Before(rt.ExpiresAt):
			refusal, why = errSessionExpired(), "expired"
			return nil
		}
		row, err := tx.Account.Query().Where(account.PublicID(sess.AccountID)).Only(ctx)
		if err != nil {
			return errorf("loading the session's account", err)
		}
		if !row.Active {
			refusal, why = errs.E(errs.Unauthenticated, "the account is deactivated"), "inactive"
			ended, err = s.endSession(ctx, tx, sess, contract.SessionEndedInactive, now)
			return err
		}
		n, err := tx.RefreshToken.Update().Where(refreshtoken.ID(rt.ID), refreshtoken.UsedAtIsNil()).SetUsedAt(now).Save(ctx)
		if err != nil {
			return errorf("rotating a refresh token", err)
		}
		if n != 1 { // cannot happen under the row lock; refuse rather than issue twice
			refusal, why = errSessionRaced(), "raced"
			return nil
		}
		tok, newHash := newRefreshToken()
		exp := now.Add(s.sessionTTL)
		if err := tx.RefreshToken.Create().SetTokenHash(newHash).SetSessionID(sess.PublicID).SetCreatedAt(now).SetExpiresAt(exp).Exec(ctx); err != nil {
			return errorf("storing a refresh token", err)
		}
		if err := tx.Session.UpdateOneID(sess.ID).SetExpiresAt(exp).Exec(ctx); err != nil {
			return errorf("extending a session", err)
		}
		acc = toAccount(row)
		out = Session{SessionID: sess.PublicID, RefreshToken: tok, RefreshExpiresAt: exp}
		return nil
	})
	if err != nil {
		return Session{}, err
	}
	if ended != nil {
		s.notify()
	}
	if refusal != nil {
		if why == "reused" {
			security.Record(ctx, s.log, security.SessionReused, "a rotated refresh token was presented again; its session ended",
				"session", ended.session, "account", ended.account)
		} else {
			s.refusedRefresh(ctx, why)
		}
		return Session{}, refusal
	}
	return s.issue(acc, out.SessionID, out.RefreshToken, out.RefreshExpiresAt, now)
}

func (s *Service) refusedRefresh(ctx context.Context, why string) {
	security.Record(ctx, s.log, security.TokenRefused, "refresh token refused", "token", "refresh", "reason", why)
}

// endedRecord is a session Refresh ended, for the security record.
type endedRecord struct{ session, account uuid.UUID }

// endSession ends one live session and stores its session.ended event.
func (s *Service) endSession(ctx context.Context, tx *authdb.Tx, sess *authdb.Session, reason string, now time.Time) (*endedRecord, error) {
	if err := tx.Session.UpdateOneID(sess.ID).SetEndedAt(now).SetEndReason(reason).Exec(ctx); err != nil {
		return nil, errorf("ending a session", err)
	}
	e, err := event.New(ctx, Producer, EventSessionEnded, 1, now, SessionEndedData{
		SessionID: sess.PublicID.String(), AccountID: sess.AccountID.String(), Reason: reason,
		EndedAt: now, TokensExpireBy: now.Add(s.ttl),
	})
	if err != nil {
		return nil, err
	}
	if err := s.outbox.Append(ctx, tx, outbox.Record{Key: sess.AccountID.String(), Envelope: e}); err != nil {
		return nil, err
	}
	return &endedRecord{session: sess.PublicID, account: sess.AccountID}, nil
}

// Logout ends the caller's session (R-SESS-2): its refresh tokens stop working at once, and a
// session.ended event makes every gateway refuse its access tokens within seconds. Ending a
// session that already ended changes nothing.
func (s *Service) Logout(ctx context.Context, actor identity.Actor, sessionID uuid.UUID) error {
	if actor.AccountID == uuid.Nil {
		return errs.E(errs.Unauthenticated, "log in first")
	}
	if sessionID == uuid.Nil {
		return errs.E(errs.Invalid, "this access token belongs to no session; nothing to log out of")
	}
	now := s.now().UTC()
	stored := false
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		sess, err := tx.Session.Query().Where(session.PublicID(sessionID), session.AccountID(actor.AccountID), lockedOnPostgres).Only(ctx)
		if authdb.IsNotFound(err) {
			return errs.E(errs.NotFound, "no such session of yours")
		}
		if err != nil {
			return errorf("reading a session", err)
		}
		if sess.EndedAt != nil {
			return nil
		}
		stored = true
		_, err = s.endSession(ctx, tx, sess, contract.SessionEndedLogout, now)
		return err
	})
	if err != nil {
		return err
	}
	if stored {
		s.notify()
		s.log.InfoContext(ctx, "session ended", "session", sessionID, "account", actor.AccountID, "reason", contract.SessionEndedLogout)
	}
	return nil
}

// endAccountSessions ends every live session of the account but keep (uuid.Nil: all). Their
// access tokens are refused through the account's version, which the caller bumps
// (R-SESS-3).
func endAccountSessions(ctx context.Context, tx *authdb.Tx, id, keep uuid.UUID, reason string, now time.Time) error {
	u := tx.Session.Update().Where(session.AccountID(id), session.EndedAtIsNil())
	if keep != uuid.Nil {
		u.Where(session.PublicIDNEQ(keep))
	}
	if _, err := u.SetEndedAt(now).SetEndReason(reason).Save(ctx); err != nil {
		return errorf("ending sessions", err)
	}
	return nil
}

// purgeSessions deletes up to purgeBatch refresh tokens that expired, and up to purgeBatch
// sessions no token can use any more with their tokens: expired ones, and ended ones whose
// access tokens have all expired (SeedRevocations reads those until then).
func (s *Service) purgeSessions(ctx context.Context, now time.Time) (sessions, tokens int, err error) {
	ids, err := s.client.RefreshToken.Query().Where(refreshtoken.ExpiresAtLTE(now)).Limit(purgeBatch).IDs(ctx)
	if err != nil {
		return 0, 0, errorf("finding expired refresh tokens", err)
	}
	if len(ids) > 0 {
		if tokens, err = s.client.RefreshToken.Delete().Where(refreshtoken.IDIn(ids...)).Exec(ctx); err != nil {
			return 0, 0, errorf("purging refresh tokens", err)
		}
	}
	cut := now.Add(-s.ttl)
	over, err := s.client.Session.Query().Where(session.Or(
		session.And(session.EndedAtIsNil(), session.ExpiresAtLTE(now)),
		session.EndedAtLTE(cut),
	)).Limit(purgeBatch).All(ctx)
	if err != nil {
		return 0, tokens, errorf("finding sessions to purge", err)
	}
	if len(over) == 0 {
		return 0, tokens, nil
	}
	sids := make([]uuid.UUID, len(over))
	rowIDs := make([]int, len(over))
	for i, o := range over {
		sids[i], rowIDs[i] = o.PublicID, o.ID
	}
	err = s.inTx(ctx, func(tx *authdb.Tx) error {
		n, err := tx.RefreshToken.Delete().Where(refreshtoken.SessionIDIn(sids...)).Exec(ctx)
		if err != nil {
			return err
		}
		tokens += n
		sessions, err = tx.Session.Delete().Where(session.IDIn(rowIDs...)).Exec(ctx)
		return err
	})
	if err != nil {
		return 0, tokens, errorf("purging sessions", err)
	}
	return sessions, tokens, nil
}

// SeedRevocations brings a gateway's revocations up to date from the auth database: every
// account's state, and the sessions that ended while their access tokens may still be valid.
// A gateway calls it at start and again after a gap in its event feed (R-REL-1); it is safe
// to call any number of times (older states never replace newer ones).
func (s *Service) SeedRevocations(ctx context.Context, r *Revocations) error {
	accs, err := s.client.Account.Query().Select(account.FieldPublicID, account.FieldVersion, account.FieldActive).All(ctx)
	if err != nil {
		return errorf("loading accounts", err)
	}
	for _, a := range accs {
		r.Observe(a.PublicID, a.Version, a.Active)
	}
	since := s.now().UTC().Add(-s.ttl)
	ended, err := s.client.Session.Query().Where(session.EndedAtGT(since)).All(ctx)
	if err != nil {
		return errorf("loading ended sessions", err)
	}
	for _, e := range ended {
		r.EndSession(e.PublicID, e.AccountID, e.EndedAt.Add(s.ttl))
	}
	return nil
}

// LookupAccount reads one account's state for a verifier that does not know it yet
// (VerifierConfig.Lookup): found is false when there is no such account.
func (s *Service) LookupAccount(ctx context.Context, id uuid.UUID) (AccountState, bool, error) {
	a, err := s.client.Account.Query().Where(account.PublicID(id)).Select(account.FieldVersion, account.FieldActive).Only(ctx)
	if authdb.IsNotFound(err) {
		return AccountState{}, false, nil
	}
	if err != nil {
		return AccountState{}, false, errorf("looking an account up", err)
	}
	return AccountState{Version: a.Version, Active: a.Active}, true, nil
}
