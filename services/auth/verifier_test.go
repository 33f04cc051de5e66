package auth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// TestVerifierRefusesOverlongTokens: R-SEC-1 — a token whose lifetime (exp − iat) exceeds the
// configured maximum was not issued by this configuration and is refused, as is one without
// iat; a token of exactly the maximum is accepted.
func TestVerifierRefusesOverlongTokens(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	c := &clock{now: t0.Add(time.Minute)}
	v, err := NewVerifier(VerifierConfig{Keys: []PublicKey{pub}, Revocations: NewRevocationsWithClock(c.Now), Clock: c.Now,
		MaxLifetime: 30 * time.Minute, Lookup: everyAccountAtVersion1})
	if err != nil {
		t.Fatal(err)
	}
	sub := uuid.New()
	for _, tt := range []struct {
		name     string
		lifetime time.Duration
		noIat    bool
		reason   string
	}{
		{"exactly the maximum", 30 * time.Minute, false, ""},
		{"a second more", 30*time.Minute + time.Second, false, RefusedLifetime},
		{"a year", 365 * 24 * time.Hour, false, RefusedLifetime},
		{"no issue time", 10 * time.Minute, true, RefusedInvalid},
	} {
		cl := validClaims(sub)
		cl.ExpiresAt = jwt.NewNumericDate(t0.Add(tt.lifetime))
		if tt.noIat {
			cl.IssuedAt = nil
		}
		_, err := v.Verify(mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", cl))
		if got := RefusalReason(err); got != tt.reason || (tt.reason == "" && err != nil) {
			t.Errorf("%s: %v (reason %q), want reason %q", tt.name, err, got, tt.reason)
		}
	}
	// The default maximum is the default token lifetime.
	v2, _ := NewVerifier(VerifierConfig{Keys: []PublicKey{pub}, Revocations: NewRevocationsWithClock(c.Now), Clock: c.Now, Lookup: everyAccountAtVersion1})
	tok, _, _ := key.sign(Account{ID: sub, Role: identity.Worker, Version: 1}, uuid.Nil, t0, DefaultTokenTTL+time.Second)
	if _, err := v2.Verify(tok); RefusalReason(err) != RefusedLifetime {
		t.Fatalf("a token longer than DefaultTokenTTL: %v", err)
	}
}

// TestVerifierUnknownAccounts: R-SEC-1, R-AUTH-5 — a token of an account the revocations do not
// know is looked up: found, it is accepted and the account remembered; not found, it is refused
// and the answer remembered for a few seconds (one lookup for a stream of such tokens); a
// failing lookup answers UNAVAILABLE with retryAfter.
func TestVerifierUnknownAccounts(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	c := &clock{now: t0}
	known, ghost, broken := uuid.New(), uuid.New(), uuid.New()
	var lookups atomic.Int64
	lookup := func(_ context.Context, id uuid.UUID) (AccountState, bool, error) {
		lookups.Add(1)
		switch id {
		case known:
			return AccountState{Version: 2, Active: true}, true, nil
		case broken:
			return AccountState{}, false, errors.New("connection refused")
		}
		return AccountState{}, false, nil
	}
	r := NewRevocationsWithClock(c.Now)
	v, err := NewVerifier(VerifierConfig{Keys: []PublicKey{pub}, Revocations: r, Clock: c.Now, Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	token := func(id uuid.UUID, version int64) string {
		tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: version}, uuid.Nil, t0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := v.Verify(token(known, 2)); err != nil {
		t.Fatalf("a known-to-the-database account: %v", err)
	}
	if _, err := v.Verify(token(known, 1)); RefusalReason(err) != RefusedOutdated {
		t.Fatalf("an older token of it: %v, want outdated", err)
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1 (the answer is remembered)", n)
	}
	for range 3 {
		_, err := v.Verify(token(ghost, 1))
		if RefusalReason(err) != RefusedUnknownAccount {
			t.Fatalf("an account nobody has: %v", err)
		}
		mustUnauthenticated(t, err)
	}
	if n := lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2 (no such account is remembered a while)", n)
	}
	c.Set(t0.Add(unknownAccountTTL))
	_, _ = v.Verify(token(ghost, 1))
	if n := lookups.Load(); n != 3 {
		t.Fatalf("%d lookups, want 3 (asked again after %v)", n, unknownAccountTTL)
	}
	_, err = v.Verify(token(broken, 1))
	e, ok := errs.As(err)
	if !ok || e.Code != errs.Unavailable || e.Meta["retryAfter"] == nil || RefusalReason(err) != RefusedUnavailable {
		t.Fatalf("a failing lookup: %v, want UNAVAILABLE with retryAfter", err)
	}
}

// TestVerifierSessions: R-SESS-2 — a token carries its session; once the session is known to
// have ended the token is refused, remembered or not; a token without a session is accepted;
// a malformed session id is invalid.
func TestVerifierSessions(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	c := &clock{now: t0}
	v, r := mustVerifier(t, c, pub)
	acc := Account{ID: uuid.New(), Role: identity.Worker, Version: 1}
	sid := uuid.New()
	tok, _, err := key.sign(acc, sid, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.VerifyToken(tok)
	if err != nil || got.SessionID != sid || got.Actor.AccountID != acc.ID || !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("VerifyToken = %+v, %v", got, err)
	}
	none, _, _ := key.sign(acc, uuid.Nil, t0, time.Hour)
	if got, err := v.VerifyToken(none); err != nil || got.SessionID != uuid.Nil {
		t.Fatalf("a token without a session: %+v, %v", got, err)
	}
	r.EndSession(sid, acc.ID, t0.Add(time.Hour))
	if _, err := v.Verify(tok); RefusalReason(err) != RefusedSessionEnded {
		t.Fatalf("after the session ended: %v", err)
	}
	if _, err := v.Verify(none); err != nil {
		t.Fatalf("the session's end refused another token of the account: %v", err)
	}
	cl := validClaims(acc.ID)
	cl.SessionID = "not-a-uuid"
	if _, err := v.Verify(mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", cl)); RefusalReason(err) != RefusedInvalid {
		t.Fatalf("a malformed sid: %v", err)
	}
}

// TestRevocationsEndedSessionsAreBounded: R-SESS-2 — an ended session is remembered only while
// its access tokens may be valid, and never more than maxEndedSessions of them.
func TestRevocationsEndedSessionsAreBounded(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	r := NewRevocationsWithClock(c.Now)
	first := uuid.New()
	r.EndSession(first, uuid.New(), t0.Add(time.Hour))
	for i := range maxEndedSessions + 100 {
		r.EndSession(uuid.New(), uuid.New(), t0.Add(time.Hour+time.Duration(i)*time.Millisecond))
		if n := r.endedSessions(); n > maxEndedSessions {
			t.Fatalf("%d ended sessions remembered, more than %d", n, maxEndedSessions)
		}
	}
	if r.SessionEnded(first) {
		t.Fatal("the earliest-expiring session was kept beyond the bound")
	}
	c.Set(t0.Add(2 * time.Hour))
	r.EndSession(uuid.New(), uuid.New(), t0.Add(3*time.Hour))
	if n := r.endedSessions(); n != 1 {
		t.Fatalf("%d ended sessions remembered after their tokens expired, want only the new one", n)
	}
	if len(r.order) > 1 {
		t.Fatalf("%d entries in the order queue, want 1", len(r.order))
	}
}

// TestRevocationsOnChange: R-SESS-4 — hooks hear of every account whose state changed or whose
// session ended, outside the set's locks (a hook may read the set), and not after removal.
func TestRevocationsOnChange(t *testing.T) {
	t.Parallel()
	r := NewRevocationsWithClock((&clock{now: t0}).Now)
	id := uuid.New()
	var heard []uuid.UUID
	remove := r.OnChange(func(a uuid.UUID) {
		_, _ = r.Account(a) // would deadlock if called under the set's lock
		_ = r.SessionEnded(a)
		heard = append(heard, a)
	})
	r.Observe(id, 1, true)
	r.Observe(id, 1, true) // not newer: no change
	r.Observe(id, 2, false)
	r.EndSession(uuid.New(), id, t0.Add(time.Hour))
	if len(heard) != 3 {
		t.Fatalf("hooks heard %d changes, want 3", len(heard))
	}
	remove()
	r.Observe(id, 3, true)
	if len(heard) != 3 {
		t.Fatal("a removed hook was called")
	}
}

// TestRevocationsApplySessionEnded: R-SESS-2 — session.ended from the feed ends the session.
func TestRevocationsApplySessionEnded(t *testing.T) {
	t.Parallel()
	r := NewRevocationsWithClock((&clock{now: t0}).Now)
	sid, id := uuid.New(), uuid.New()
	e := mustEnvelope(t, EventSessionEnded, SessionEndedData{SessionID: sid.String(), AccountID: id.String(), Reason: "logout", EndedAt: t0, TokensExpireBy: t0.Add(time.Hour)})
	if err := r.ApplyEvent(e); err != nil {
		t.Fatal(err)
	}
	if !r.SessionEnded(sid) {
		t.Fatal("the session did not end")
	}
	e.Data = []byte(`{"sessionId":"nope","accountId":"` + id.String() + `"}`)
	if err := r.ApplyEvent(e); err == nil {
		t.Fatal("a malformed session id was applied")
	}
}
