package auth

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/identity"
)

// TestVerifierRemembersVerifiedTokens: a verified token is accepted again without its signature
// being checked (the verifier here has lost the key), but only until min(expiry, TTL after
// verification); after that it is verified afresh.
func TestVerifierRemembersVerifiedTokens(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	key, pub := mustKey(t, "k1")
	v, _ := mustVerifier(t, c, pub)
	id := uuid.New()
	tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	delete(v.keys, "k1") // from now on only a remembered token verifies
	c.Set(t0.Add(verifiedTokenTTL - time.Second))
	if a, err := v.Verify(tok); err != nil || a.AccountID != id || a.Role != identity.Worker {
		t.Fatalf("remembered token within the TTL: %+v, %v", a, err)
	}
	// Only the exact text hits: a copy with one signature character changed is verified, and
	// refused.
	i := len(tok) - 10
	alt := byte('A')
	if tok[i] == 'A' {
		alt = 'B'
	}
	mustUnauthenticated(t, func() error { _, err := v.Verify(tok[:i] + string(alt) + tok[i+1:]); return err }())
	c.Set(t0.Add(verifiedTokenTTL))
	mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
	// A clock going back before the verification does not use the entry either.
	c.Set(t0.Add(-time.Second))
	mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
}

// TestVerifierRememberedTokenExpires: R-AUTH-4 — a remembered token is refused as expired at
// its expiry, even when that comes before the TTL.
func TestVerifierRememberedTokenExpires(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	key, pub := mustKey(t, "k1")
	v, _ := mustVerifier(t, c, pub)
	tok, exp, err := key.sign(Account{ID: uuid.New(), Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(exp.Add(-time.Second))
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	c.Set(exp)
	e := mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
	if !strings.Contains(e.Message, "expired") {
		t.Fatalf("message %q, want it to say expired", e.Message)
	}
}

// TestVerifierRememberedTokenRevoked: R-AUTH-5 — a remembered token is refused on the next call
// after its account is deactivated or changed.
func TestVerifierRememberedTokenRevoked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		version int64
		active  bool
		want    string
	}{
		{"deactivated", 2, false, "deactivated"},
		{"role changed", 2, true, "changed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, pub := mustKey(t, "k1")
			v, r := mustVerifier(t, &clock{now: t0}, pub)
			id := uuid.New()
			tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := v.Verify(tok); err != nil {
					t.Fatal(err)
				}
			}
			r.Observe(id, tt.version, tt.active)
			for range 2 {
				e := mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
				if !strings.Contains(e.Message, tt.want) {
					t.Fatalf("message %q, want it to contain %q", e.Message, tt.want)
				}
			}
		})
	}
}

// TestVerifierCacheIsBounded: however many distinct tokens are verified, at most
// verifiedTokens are remembered.
func TestVerifierCacheIsBounded(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	v, _ := mustVerifier(t, &clock{now: t0}, pub)
	for i := range verifiedTokens + 100 {
		tok, _, err := key.sign(Account{ID: uuid.New(), Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token %s: %v", strconv.Itoa(i), err)
		}
		if n := v.verified.len(); n > verifiedTokens {
			t.Fatalf("after %d tokens the cache holds %d, more than %d", i+1, n, verifiedTokens)
		}
	}
}
