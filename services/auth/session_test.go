package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// feed applies every stored event to r, as a gateway's revocation feed would (ApplyEvent keeps
// the newest state, so feeding again is harmless).
func (h *harness) feed(tb testing.TB, r *auth.Revocations) {
	tb.Helper()
	for _, row := range h.mustOutbox(tb) {
		if err := r.ApplyEvent(row.Envelope); err != nil {
			tb.Fatalf("applying %s: %v", row.Name, err)
		}
	}
}

// eventsNamed returns the stored events of the name.
func (h *harness) eventsNamed(tb testing.TB, name string) []outboxRow {
	tb.Helper()
	var out []outboxRow
	for _, r := range h.mustOutbox(tb) {
		if r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

func (h *harness) mustSignUp(tb testing.TB, username string) auth.Session {
	tb.Helper()
	s, err := h.svc.SignUp(context.Background(), newAccount(username, ""))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (h *harness) mustLogin(tb testing.TB, username string) auth.Session {
	tb.Helper()
	s, err := h.svc.Login(context.Background(), username, "beak-"+username, "192.0.2.1")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func actorOf(s auth.Session) identity.Actor {
	return identity.Actor{AccountID: s.Account.ID, Role: s.Account.Role}
}

// mustRefused asserts err is UNAUTHENTICATED with a message containing want.
func mustRefused(tb testing.TB, err error, want string) {
	tb.Helper()
	e := mustErr(tb, err, errs.Unauthenticated, "")
	if !strings.Contains(e.Message, want) {
		tb.Fatalf("refusal %q, want it to say %q", e.Message, want)
	}
}

// TestLoginStartsASession: R-SESS-1 — sign-up and login each start a session: a refresh token
// of 32 random bytes (base64url) expiring after SessionTTL, stored only as its SHA-256, and an
// access token carrying the session's id.
func TestLoginStartsASession(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		up := h.mustSignUp(t, "popug")
		in := h.mustLogin(t, "popug")
		v, _ := h.mustVerifier(t, h.svc)
		for _, s := range []auth.Session{up, in} {
			raw, err := base64.RawURLEncoding.DecodeString(s.RefreshToken)
			if err != nil || len(raw) != 32 {
				t.Fatalf("refresh token %q: %d bytes, %v; want 32 random bytes in base64url", s.RefreshToken, len(raw), err)
			}
			if s.SessionID == uuid.Nil || !s.RefreshExpiresAt.Equal(start.Add(auth.DefaultSessionTTL)) {
				t.Fatalf("session %s expiring %v, want an id and %v", s.SessionID, s.RefreshExpiresAt, start.Add(auth.DefaultSessionTTL))
			}
			tok, err := v.VerifyToken(s.Token)
			if err != nil || tok.SessionID != s.SessionID || tok.Actor.AccountID != s.Account.ID || !tok.ExpiresAt.Equal(s.ExpiresAt) {
				t.Fatalf("VerifyToken = %+v, %v; want the session %s", tok, err, s.SessionID)
			}
		}
		if up.SessionID == in.SessionID || up.RefreshToken == in.RefreshToken {
			t.Fatal("two logins share a session")
		}
		rows, err := db.SQL.Query(`SELECT token_hash FROM refresh_tokens`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		stored := map[string]bool{}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			stored[string(b)] = true
		}
		for _, s := range []auth.Session{up, in} {
			sum := sha256.Sum256([]byte(s.RefreshToken))
			if !stored[string(sum[:])] || stored[s.RefreshToken] {
				t.Fatalf("refresh tokens stored %d, want only their SHA-256", len(stored))
			}
		}
		if n := h.mustCount(t, "sessions"); n != 2 {
			t.Fatalf("%d sessions, want 2", n)
		}
	})
}

// TestRefreshRotates: R-SESS-1 — a refresh returns a new refresh token of the same session and
// an access token for the account's current version; the old refresh token is marked used.
func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		v, r := h.mustVerifier(t, h.svc)
		h.clock.Advance(10 * time.Minute)
		name := "Kesha the Great"
		if _, err := h.svc.UpdateProfile(ctx, actorOf(s1), &name, nil); err != nil {
			t.Fatal(err)
		}
		h.feed(t, r)
		mustRefused(t, func() error { _, err := v.Verify(s1.Token); return err }(), "changed")
		s2, err := h.svc.Refresh(ctx, s1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		if s2.SessionID != s1.SessionID || s2.RefreshToken == s1.RefreshToken || s2.Account.Version != 2 || s2.Account.FullName != name ||
			!s2.RefreshExpiresAt.Equal(h.clock.Now().Add(auth.DefaultSessionTTL)) {
			t.Fatalf("refreshed session = %+v", s2)
		}
		if tok, err := v.VerifyToken(s2.Token); err != nil || tok.Version != 2 || tok.SessionID != s1.SessionID {
			t.Fatalf("the refreshed access token: %+v, %v", tok, err)
		}
		if n := h.mustCountWhere(t, "refresh_tokens", "used_at IS NOT NULL"); n != 1 {
			t.Fatalf("%d used refresh tokens, want 1", n)
		}
		h.clock.Advance(time.Hour)
		s3, err := h.svc.Refresh(ctx, s2.RefreshToken)
		if err != nil || s3.SessionID != s1.SessionID {
			t.Fatalf("second rotation: %+v, %v", s3, err)
		}
	})
}

// TestRefreshReuseEndsTheSession: R-SESS-1 (OAuth 2.0 Security BCP) — a rotated refresh token
// presented again, after the reuse grace, ends its whole session: the newest refresh token
// stops working, a session.ended event makes gateways refuse the session's access tokens, and
// a session_reused security event is recorded. The account's other sessions go on.
func TestRefreshReuseEndsTheSession(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		other := h.mustLogin(t, "popug")
		v, r := h.mustVerifier(t, h.svc)
		s2, err := h.svc.Refresh(ctx, s1.RefreshToken)
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(auth.DefaultReuseGrace + time.Second)
		_, err = h.svc.Refresh(ctx, s1.RefreshToken) // the thief, or the victim after the thief
		mustRefused(t, err, "already used")
		_, err = h.svc.Refresh(ctx, s2.RefreshToken)
		mustRefused(t, err, "ended")
		ended := h.eventsNamed(t, auth.EventSessionEnded)
		if len(ended) != 1 {
			t.Fatalf("%d session.ended events, want 1", len(ended))
		}
		d := decode[auth.SessionEndedData](t, ended[0].Envelope)
		if d.SessionID != s1.SessionID.String() || d.AccountID != s1.Account.ID.String() || d.Reason != contract.SessionEndedReused ||
			!d.TokensExpireBy.Equal(h.clock.Now().Add(auth.DefaultTokenTTL)) {
			t.Fatalf("session.ended = %+v", d)
		}
		if _, err := v.Verify(s2.Token); err != nil {
			t.Fatalf("before the event arrives the access token still works: %v", err)
		}
		h.feed(t, r)
		mustRefused(t, func() error { _, err := v.Verify(s2.Token); return err }(), "session")
		if _, err := v.Verify(other.Token); err != nil {
			t.Fatalf("another session's access token: %v", err)
		}
		if _, err := h.svc.Refresh(ctx, other.RefreshToken); err != nil {
			t.Fatalf("another session's refresh: %v", err)
		}
		if !strings.Contains(h.logs.String(), "security=session_reused") {
			t.Fatal("no session_reused security event was logged")
		}
		if strings.Contains(h.logs.String(), s1.RefreshToken) {
			t.Fatal("a refresh token is in the log")
		}
	})
}

// TestConcurrentRefreshesOneWins: R-SESS-1 — of 20 refreshes with one token at once exactly
// one gets a new session token; the others, within the reuse grace, are refused without ending
// the session, whose new token keeps working.
func TestConcurrentRefreshesOneWins(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []auth.Session
		refused := 0
		for range 20 {
			wg.Go(func() {
				s, err := h.svc.Refresh(ctx, s1.RefreshToken)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					won = append(won, s)
					return
				}
				if e, ok := errs.As(err); !ok || e.Code != errs.Unauthenticated || !strings.Contains(e.Message, "just used") {
					t.Errorf("a losing refresh: %v, want refused as just used", err)
				}
				refused++
			})
		}
		wg.Wait()
		if len(won) != 1 || refused != 19 {
			t.Fatalf("%d refreshes won and %d were refused, want exactly one winner", len(won), refused)
		}
		if n := h.mustCount(t, "refresh_tokens"); n != 2 {
			t.Fatalf("%d refresh tokens stored, want the first and the winner's", n)
		}
		h.clock.Advance(time.Minute)
		if _, err := h.svc.Refresh(ctx, won[0].RefreshToken); err != nil {
			t.Fatalf("the winner's token after the race: %v", err)
		}
		if n := len(h.eventsNamed(t, auth.EventSessionEnded)); n != 0 {
			t.Fatalf("the race ended the session (%d session.ended)", n)
		}
	})
}

// TestRefreshRefusals: R-SESS-1 — unknown, malformed and expired refresh tokens are refused;
// an account found inactive ends the session.
func TestRefreshRefusals(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s := h.mustSignUp(t, "popug")
		for _, bad := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 1<<20), s.RefreshToken + "A", s.Token} {
			_, err := h.svc.Refresh(ctx, bad)
			mustRefused(t, err, "log in again")
		}
		h.clock.Advance(auth.DefaultSessionTTL)
		_, err := h.svc.Refresh(ctx, s.RefreshToken)
		mustRefused(t, err, "expired")

		// An account made inactive behind the service's back (its sessions still live).
		s2 := h.mustLogin(t, "popug")
		if err := h.client.Account.Update().Where(account.Username("popug")).SetActive(false).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.Refresh(ctx, s2.RefreshToken)
		mustRefused(t, err, "deactivated")
		ended := h.eventsNamed(t, auth.EventSessionEnded)
		if len(ended) != 1 || decode[auth.SessionEndedData](t, ended[0].Envelope).Reason != contract.SessionEndedInactive {
			t.Fatalf("session.ended events %v, want one for the inactive account", names(ended))
		}
	})
}

// TestLogout: R-SESS-2 — logout ends the caller's session: its refresh token stops working at
// once, and gateways refuse its access tokens once session.ended reaches them; the account's
// other sessions go on; a second logout changes nothing; another's session is not found.
func TestLogout(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		s2 := h.mustLogin(t, "popug")
		stranger := h.mustSignUp(t, "stranger")
		v, r := h.mustVerifier(t, h.svc)
		var changed []uuid.UUID
		var mu sync.Mutex
		remove := r.OnChange(func(id uuid.UUID) { mu.Lock(); changed = append(changed, id); mu.Unlock() })
		defer remove()

		if err := h.svc.Logout(ctx, actorOf(s1), s1.SessionID); err != nil {
			t.Fatal(err)
		}
		_, err := h.svc.Refresh(ctx, s1.RefreshToken)
		mustRefused(t, err, "ended")
		ended := h.eventsNamed(t, auth.EventSessionEnded)
		if len(ended) != 1 {
			t.Fatalf("%d session.ended events, want 1", len(ended))
		}
		if d := decode[auth.SessionEndedData](t, ended[0].Envelope); d.SessionID != s1.SessionID.String() || d.Reason != contract.SessionEndedLogout {
			t.Fatalf("session.ended = %+v", d)
		}
		h.feed(t, r)
		mustRefused(t, func() error { _, err := v.Verify(s1.Token); return err }(), "session")
		if _, err := v.Verify(s2.Token); err != nil {
			t.Fatalf("the other session's access token: %v", err)
		}
		if _, err := h.svc.Refresh(ctx, s2.RefreshToken); err != nil {
			t.Fatalf("the other session's refresh: %v", err)
		}
		mu.Lock()
		if !containsID(changed, s1.Account.ID) {
			t.Errorf("OnChange was not told of the logout (got %v)", changed)
		}
		mu.Unlock()

		if err := h.svc.Logout(ctx, actorOf(s1), s1.SessionID); err != nil {
			t.Fatalf("a second logout: %v", err)
		}
		if n := len(h.eventsNamed(t, auth.EventSessionEnded)); n != 1 {
			t.Fatalf("a second logout stored an event (%d)", n)
		}
		mustErr(t, h.svc.Logout(ctx, actorOf(stranger), s2.SessionID), errs.NotFound, "")
		mustErr(t, h.svc.Logout(ctx, actorOf(s2), uuid.Nil), errs.Invalid, "")
		mustErr(t, h.svc.Logout(ctx, identity.Actor{}, s2.SessionID), errs.Unauthenticated, "")
		if _, err := h.svc.Refresh(ctx, s2.RefreshToken); err == nil {
			t.Fatal("the rotated token of s2 worked again")
		}
	})
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestChangePassword: R-SESS-3 — the current beak print is checked (a wrong one is an input
// error, throttled like a login), the new one validated; every other session ends, the
// account's version moves on (outstanding access tokens are refused, the caller refreshes),
// and account.updated is published.
func TestChangePassword(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		s2 := h.mustLogin(t, "popug")
		v, r := h.mustVerifier(t, h.svc)
		me := actorOf(s1)

		mustErr(t, h.svc.ChangePassword(ctx, me, s1.SessionID, "beak-popug", "short"), errs.Invalid, "newPassword")
		mustErr(t, h.svc.ChangePassword(ctx, me, s1.SessionID, "beak-popug", "beak\x00print"), errs.Invalid, "newPassword")
		mustErr(t, h.svc.ChangePassword(ctx, me, s1.SessionID, "wrong-beak", "new-beak-print"), errs.Invalid, "currentPassword")
		mustErr(t, h.svc.ChangePassword(ctx, identity.Actor{}, s1.SessionID, "beak-popug", "new-beak-print"), errs.Unauthenticated, "")
		before := len(h.mustOutbox(t))

		if err := h.svc.ChangePassword(ctx, me, s1.SessionID, "beak-popug", "new-beak-print"); err != nil {
			t.Fatal(err)
		}
		rows := h.mustOutbox(t)[before:]
		if len(rows) != 1 || rows[0].Name != auth.EventAccountUpdated || decode[auth.AccountData](t, rows[0].Envelope).Version != 2 {
			t.Fatalf("events %v, want one account.updated at version 2", names(rows))
		}
		_, err := h.svc.Refresh(ctx, s2.RefreshToken)
		mustRefused(t, err, "ended")
		h.feed(t, r)
		mustRefused(t, func() error { _, err := v.Verify(s1.Token); return err }(), "changed")
		fresh, err := h.svc.Refresh(ctx, s1.RefreshToken)
		if err != nil {
			t.Fatalf("the caller's own session after the change: %v", err)
		}
		if _, err := v.Verify(fresh.Token); err != nil {
			t.Fatalf("the caller's refreshed token: %v", err)
		}
		_, err = h.svc.Login(ctx, "popug", "beak-popug", "192.0.2.1")
		mustRefused(t, err, "wrong")
		if _, err := h.svc.Login(ctx, "popug", "new-beak-print", "192.0.2.1"); err != nil {
			t.Fatalf("the new beak print: %v", err)
		}

		// Guessing the current beak print is throttled like logins.
		var last error
		for range auth.DefaultThrottle.PairMax + 1 {
			last = h.svc.ChangePassword(ctx, me, fresh.SessionID, "wrong-beak", "other-beak-print")
		}
		e := mustErr(t, last, errs.Invalid, "currentPassword")
		if e.Meta["retryAfter"] == nil {
			t.Fatalf("the guess after the allowance: %q %v, want throttled with retryAfter", e.Message, e.Meta)
		}
	})
}

// TestRoleChangeAndDeactivationEndSessions: R-SESS-3, R-AUTH-5 — a role change and a
// deactivation end every session of the account: its refresh tokens stop working at once.
func TestRoleChangeAndDeactivationEndSessions(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		a := h.mustSignUp(t, "popug")
		b := h.mustLogin(t, "popug")
		if _, err := h.svc.ChangeRole(ctx, admin, a.Account.ID, identity.Manager); err != nil {
			t.Fatal(err)
		}
		for _, s := range []auth.Session{a, b} {
			_, err := h.svc.Refresh(ctx, s.RefreshToken)
			mustRefused(t, err, "ended")
		}
		c := h.mustLogin(t, "popug")
		if c.Account.Role != identity.Manager {
			t.Fatalf("role after the change: %s", c.Account.Role)
		}
		if _, err := h.svc.Deactivate(ctx, admin, a.Account.ID); err != nil {
			t.Fatal(err)
		}
		_, err := h.svc.Refresh(ctx, c.RefreshToken)
		mustRefused(t, err, "ended")
		if n := h.mustCountWhere(t, "sessions", "ended_at IS NULL AND account_id <> '"+admin.AccountID.String()+"'"); n != 0 {
			// (PostgreSQL compares uuid to text literal; SQLite stores the text.)
			t.Fatalf("%d sessions of the account still live", n)
		}
	})
}

// TestReactivate: R-AUTH-2, R-AUTH-6, R-EVT-6 — an admin makes a deactivated account active:
// its version moves on (tokens from before stay refused), account.updated and
// account.reactivated are published, and it logs in again. Only admins; an active account
// changes nothing.
func TestReactivate(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		s := h.mustSignUp(t, "popug")
		v, r := h.mustVerifier(t, h.svc)
		if _, err := h.svc.Deactivate(ctx, admin, s.Account.ID); err != nil {
			t.Fatal(err)
		}
		_, err := h.svc.Reactivate(ctx, identity.Actor{AccountID: s.Account.ID, Role: identity.Manager}, s.Account.ID)
		mustErr(t, err, errs.Forbidden, "")
		_, err = h.svc.Reactivate(ctx, admin, uuid.New())
		mustErr(t, err, errs.NotFound, "")
		before := len(h.mustOutbox(t))
		a, err := h.svc.Reactivate(ctx, admin, s.Account.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Active || a.Version != 3 {
			t.Fatalf("reactivated account = %+v", a)
		}
		rows := h.mustOutbox(t)[before:]
		if got := names(rows); len(got) != 2 || got[0] != auth.EventAccountUpdated || got[1] != auth.EventAccountReactivated {
			t.Fatalf("events %v, want account.updated then account.reactivated", got)
		}
		if d := decode[auth.ReactivatedData](t, rows[1].Envelope); d.AccountID != s.Account.ID.String() || d.Version != 3 {
			t.Fatalf("account.reactivated = %+v", d)
		}
		h.feed(t, r)
		mustRefused(t, func() error { _, err := v.Verify(s.Token); return err }(), "changed")
		again := h.mustLogin(t, "popug")
		if _, err := v.Verify(again.Token); err != nil {
			t.Fatalf("a new login after reactivation: %v", err)
		}
		if a, err := h.svc.Reactivate(ctx, admin, s.Account.ID); err != nil || a.Version != 3 {
			t.Fatalf("reactivating an active account: %+v, %v", a, err)
		}
		if n := len(h.mustOutbox(t)); n != before+2 {
			t.Fatalf("reactivating an active account stored %d events", n-before-2)
		}
	})
}

// TestUpdateProfile: R-AUTH-6, R-SEC-6 — the caller changes their own full name and email,
// validated as at sign-up with every offending field reported; the version moves on and
// account.updated carries the new values; nothing changed stores nothing.
func TestUpdateProfile(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s := h.mustSignUp(t, "popug")
		me := actorOf(s)
		badName, badEmail := "\u202eguPoP", "not an email"
		_, err := h.svc.UpdateProfile(ctx, me, &badName, &badEmail)
		e := mustErr(t, err, errs.Invalid, "fullName")
		if fields, _ := e.Meta["fields"].([]map[string]string); len(fields) != 2 || fields[1]["field"] != "email" {
			t.Fatalf("fields %v, want fullName and email", e.Meta["fields"])
		}
		before := len(h.mustOutbox(t))
		name, email := "Иннокентий Попугаев", "kesha@popugai.ru"
		a, err := h.svc.UpdateProfile(ctx, me, &name, &email)
		if err != nil {
			t.Fatal(err)
		}
		if a.FullName != name || a.Email != email || a.Version != 2 || a.Username != "popug" {
			t.Fatalf("updated = %+v", a)
		}
		rows := h.mustOutbox(t)[before:]
		if len(rows) != 1 || rows[0].Name != auth.EventAccountUpdated {
			t.Fatalf("events %v, want one account.updated", names(rows))
		}
		if d := decode[auth.AccountData](t, rows[0].Envelope); d.FullName != name || d.Email != email || d.Version != 2 {
			t.Fatalf("account.updated = %+v", d)
		}
		for _, c := range []struct{ name, email *string }{{nil, nil}, {&name, nil}, {nil, &email}, {&name, &email}} {
			if a, err := h.svc.UpdateProfile(ctx, me, c.name, c.email); err != nil || a.Version != 2 {
				t.Fatalf("no change: %+v, %v", a, err)
			}
		}
		if n := len(h.mustOutbox(t)); n != before+1 {
			t.Fatalf("unchanged profiles stored %d events", n-before-1)
		}
		_, err = h.svc.UpdateProfile(ctx, identity.Actor{}, &name, nil)
		mustErr(t, err, errs.Unauthenticated, "")
	})
}

// TestResetPassword: R-SESS-3 — an operator's reset gives a generated beak print, ends every
// session, and moves the version on; the old beak print no longer logs in.
func TestResetPassword(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s := h.mustSignUp(t, "popug")
		pw, err := h.svc.ResetPassword(ctx, "popug")
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) < auth.MinPasswordLen {
			t.Fatalf("generated beak print %q is too short", pw)
		}
		_, err = h.svc.Refresh(ctx, s.RefreshToken)
		mustRefused(t, err, "ended")
		_, err = h.svc.Login(ctx, "popug", "beak-popug", "192.0.2.1")
		mustRefused(t, err, "wrong")
		in, err := h.svc.Login(ctx, "popug", pw, "192.0.2.1")
		if err != nil || in.Account.Version != 2 {
			t.Fatalf("login with the generated beak print: %+v, %v", in.Account, err)
		}
		_, err = h.svc.ResetPassword(ctx, "nobody")
		mustErr(t, err, errs.NotFound, "")
		_, err = h.svc.ResetPassword(ctx, "No Body")
		mustErr(t, err, errs.Invalid, "username")
	})
}

// TestSessionsArePurged: R-SESS-1 — expired refresh tokens, expired sessions, and ended
// sessions whose access tokens have all expired are deleted.
func TestSessionsArePurged(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s1 := h.mustSignUp(t, "popug")
		s2 := h.mustLogin(t, "popug")
		if _, err := h.svc.Refresh(ctx, s1.RefreshToken); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Logout(ctx, actorOf(s2), s2.SessionID); err != nil {
			t.Fatal(err)
		}
		// Within the access tokens' lifetime the ended session is kept (SeedRevocations reads it).
		h.clock.Advance(auth.DefaultTokenTTL - time.Second)
		if p, err := h.svc.Purge(ctx); err != nil || p.Sessions != 0 || p.RefreshTokens != 0 {
			t.Fatalf("Purge = %+v, %v; want nothing yet", p, err)
		}
		h.clock.Advance(time.Second)
		if p, err := h.svc.Purge(ctx); err != nil || p.Sessions != 1 || p.RefreshTokens != 1 {
			t.Fatalf("Purge = %+v, %v; want the ended session and its token", p, err)
		}
		h.clock.Advance(auth.DefaultSessionTTL)
		if p, err := h.svc.Purge(ctx); err != nil || p.Sessions != 1 || p.RefreshTokens != 2 {
			t.Fatalf("Purge = %+v, %v; want the expired session and its two tokens", p, err)
		}
		if n := h.mustCount(t, "sessions") + h.mustCount(t, "refresh_tokens"); n != 0 {
			t.Fatalf("%d rows remain", n)
		}
	})
}

// TestSeedRevocationsAfterAGap: R-REL-1, R-AUTH-5, R-SESS-2 — a gateway whose event feed had a
// gap calls SeedRevocations again and refuses what changed meanwhile: deactivated, changed and
// logged-out tokens; its OnChange hooks hear of each account.
func TestSeedRevocationsAfterAGap(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		gone, changed, out := h.mustSignUp(t, "gone"), h.mustSignUp(t, "changed"), h.mustSignUp(t, "out")
		keys, err := h.svc.PublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := auth.NewRevocationsWithClock(h.clock.Now)
		if err := h.svc.SeedRevocations(ctx, r); err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: r, Clock: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		var heard []uuid.UUID
		r.OnChange(func(id uuid.UUID) { heard = append(heard, id) })
		// The gap: these happen, their events never reach this gateway.
		if _, err := h.svc.Deactivate(ctx, admin, gone.Account.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.ChangeRole(ctx, admin, changed.Account.ID, identity.Accountant); err != nil {
			t.Fatal(err)
		}
		if err := h.svc.Logout(ctx, actorOf(out), out.SessionID); err != nil {
			t.Fatal(err)
		}
		for _, s := range []auth.Session{gone, changed, out} {
			if _, err := v.Verify(s.Token); err != nil {
				t.Fatalf("%s before the reseed: %v", s.Account.Username, err)
			}
		}
		if err := h.svc.SeedRevocations(ctx, r); err != nil {
			t.Fatal(err)
		}
		for s, want := range map[*auth.Session]string{&gone: "deactivated", &changed: "changed", &out: "session"} {
			mustRefused(t, func() error { _, err := v.Verify(s.Token); return err }(), want)
			if !containsID(heard, s.Account.ID) {
				t.Errorf("OnChange did not hear of %s", s.Account.Username)
			}
		}
		// Seeding again changes nothing more.
		n := len(heard)
		if err := h.svc.SeedRevocations(ctx, r); err != nil || len(heard) != n {
			t.Fatalf("a third seed: %v, %d more changes", err, len(heard)-n)
		}
	})
}

// TestVerifierLooksUpNewAccounts: R-SEC-1, R-AUTH-5 — a gateway whose revocations do not know
// an account yet (signed up through another gateway a moment ago) asks the auth database and
// accepts its token at once; without a lookup it refuses.
func TestVerifierLooksUpNewAccounts(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		keys, err := h.svc.PublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := auth.NewRevocationsWithClock(h.clock.Now)
		if err := h.svc.SeedRevocations(ctx, r); err != nil {
			t.Fatal(err)
		}
		with, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: r, Clock: h.clock.Now, Lookup: h.svc.LookupAccount})
		if err != nil {
			t.Fatal(err)
		}
		without, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: auth.NewRevocationsWithClock(h.clock.Now), Clock: h.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		s := h.mustSignUp(t, "newcomer") // "on another gateway": no event reached r
		if _, err := with.Verify(s.Token); err != nil {
			t.Fatalf("a new account's token with a lookup: %v", err)
		}
		if st, ok := r.Account(s.Account.ID); !ok || st != (auth.AccountState{Version: 1, Active: true}) {
			t.Fatalf("the lookup was not remembered: %+v, %v", st, ok)
		}
		_, err = without.Verify(s.Token)
		mustRefused(t, err, "unknown")
		if auth.RefusalReason(err) != auth.RefusedUnknownAccount {
			t.Fatalf("reason %q, want %q", auth.RefusalReason(err), auth.RefusedUnknownAccount)
		}
	})
}

// TestMigrate: R-SEC-3 — auth.Migrate drops the old login_throttles table, fills the search
// text of accounts stored without it, and on PostgreSQL creates the trigram index; running it
// again changes nothing.
func TestMigrate(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		h.mustSignUp(t, "popug")
		if _, err := db.SQL.Exec(`UPDATE accounts SET search_text = ''`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.Exec(`CREATE TABLE login_throttles (id INTEGER PRIMARY KEY, username TEXT)`); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			schemaMu.Lock()
			err := db.Migrate(ctx, func(ctx context.Context) error { return auth.Migrate(ctx, db) })
			schemaMu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		var text string
		if err := db.SQL.QueryRow(`SELECT search_text FROM accounts`).Scan(&text); err != nil || text != "popug\npopug popug\npopug@uberpopug.com" {
			t.Fatalf("search text %q, %v", text, err)
		}
		exists := `SELECT COUNT(*) FROM sqlite_master WHERE name = $1`
		if db.Dialect == "postgres" {
			exists = `SELECT COUNT(*) FROM pg_class WHERE relname = $1`
		}
		for name, want := range map[string]int{"login_throttles": 0, "login_limits": 1} {
			var n int
			if err := db.SQL.QueryRow(storage.Rebind(db.Dialect, exists), name).Scan(&n); err != nil || n != want {
				t.Fatalf("%s: %d, %v; want %d", name, n, err, want)
			}
		}
		if db.Dialect == "postgres" {
			var n int
			if err := db.SQL.QueryRow(`SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'account_search_text_trgm'`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("trigram index: %d, %v", n, err)
			}
		}
	})
}
