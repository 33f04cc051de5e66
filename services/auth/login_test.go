package auth_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// withThrottle sets the service's throttle policy.
func withThrottle(p auth.ThrottlePolicy) func(*auth.Config) {
	return func(c *auth.Config) { c.Throttle = p }
}

// countHashes counts the argon2id computations the service starts from now on.
func countHashes(svc *auth.Service) *atomic.Int64 {
	var n atomic.Int64
	auth.SetHashHook(svc, func(d int) {
		if d > 0 {
			n.Add(1)
		}
	})
	return &n
}

// outcome sorts login errors: "ok", "wrong", "throttled", or the error.
func outcome(tb testing.TB, err error) string {
	tb.Helper()
	if err == nil {
		return "ok"
	}
	e, ok := errs.As(err)
	switch {
	case ok && e.Code == errs.Unauthenticated && e.Message == "wrong username or beak print":
		return "wrong"
	case ok && e.Code == errs.Unauthenticated && e.Meta["retryAfter"] != nil:
		if secs, _ := e.Meta["retryAfter"].(int); secs < 1 || !strings.Contains(e.Message, "too many failed logins") {
			tb.Fatalf("throttled login: %q, retryAfter %v", e.Message, e.Meta["retryAfter"])
		}
		return "throttled"
	}
	tb.Fatalf("unexpected login error: %v", err)
	return ""
}

// concurrently runs n logins at once and tallies their outcomes.
func concurrently(tb testing.TB, n int, login func(i int) error) map[string]int {
	tb.Helper()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	for i := range n {
		wg.Go(func() { errc <- login(i) })
	}
	wg.Wait()
	close(errc)
	got := map[string]int{}
	for err := range errc {
		got[outcome(tb, err)]++
	}
	return got
}

// TestConcurrentGuessesFromOneClient: R-SEC-3 — 60 wrong beak prints sent at once for one
// username from one client: each is counted before its hash, so only the allowance (PairMax)
// is hashed, every other one is refused with retryAfter, and then the right beak print from
// that client is refused too.
func TestConcurrentGuessesFromOneClient(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
			t.Fatal(err)
		}
		hashes := countHashes(h.svc)
		got := concurrently(t, 60, func(int) error {
			_, err := h.svc.Login(ctx, "popug", "wrong-beak", "203.0.113.7")
			return err
		})
		allowance := auth.DefaultThrottle.PairMax
		if n := hashes.Load(); n != int64(allowance) {
			t.Fatalf("%d beak prints hashed for 60 concurrent guesses, want the allowance %d", n, allowance)
		}
		if got["wrong"] != allowance || got["throttled"] != 60-allowance {
			t.Fatalf("outcomes %v, want %d wrong and %d throttled", got, allowance, 60-allowance)
		}
		_, err := h.svc.Login(ctx, "popug", "beak-popug", "203.0.113.7")
		if outcome(t, err) != "throttled" {
			t.Fatalf("the right beak print from the guessing client: %v, want throttled", err)
		}
	})
}

// TestConcurrentGuessesFromManyClients: R-SEC-3 — 60 clients sending 3 wrong beak prints each
// for one username, all at once: beyond the username's ceiling only clients that have not
// tried it are admitted, one attempt each, so at most UserMax + 60 of the 180 are hashed; the
// owner, from a client of their own, still logs in.
func TestConcurrentGuessesFromManyClients(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
			t.Fatal(err)
		}
		hashes := countHashes(h.svc)
		got := concurrently(t, 180, func(i int) error {
			_, err := h.svc.Login(ctx, "popug", "wrong-beak", fmt.Sprintf("198.51.100.%d", i%60))
			return err
		})
		bound := auth.DefaultThrottle.UserMax + 60
		if n := hashes.Load(); n > int64(bound) || n != int64(got["wrong"]) {
			t.Fatalf("%d beak prints hashed (%v), want at most UserMax + clients = %d, one per wrong answer", n, got, bound)
		}
		if got["throttled"] < 180-bound {
			t.Fatalf("outcomes %v: want at least %d throttled", got, 180-bound)
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "192.0.2.1"); err != nil {
			t.Fatalf("the owner from a client of their own, during the attack: %v", err)
		}
	})
}

// TestBlockedAttackerDoesNotLockTheOwnerOut: R-SEC-3 — a client that guessed wrong until
// blocked is refused even with the right beak print, while the owner on another client logs in;
// with the username over its ceiling, the owner's client still gets its attempt.
func TestBlockedAttackerDoesNotLockTheOwnerOut(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		p := auth.DefaultThrottle
		p.UserMax = 8
		h := MustService(t, db, withThrottle(p))
		ctx := context.Background()
		if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
			t.Fatal(err)
		}
		for i := range p.PairMax {
			if _, err := h.svc.Login(ctx, "popug", "wrong-beak", "203.0.113.66"); outcome(t, err) != "wrong" {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "203.0.113.66"); outcome(t, err) != "throttled" {
			t.Fatalf("the blocked client with the right beak print: %v, want throttled", err)
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "192.0.2.10"); err != nil {
			t.Fatalf("the owner on another client: %v", err)
		}
		// More attackers push the username over its ceiling (8 attempts in the window).
		for i := range 4 {
			if _, err := h.svc.Login(ctx, "popug", "wrong-beak", fmt.Sprintf("203.0.113.%d", 100+i)); outcome(t, err) != "wrong" {
				t.Fatalf("attacker %d: %v", i, err)
			}
		}
		if _, err := h.svc.Login(ctx, "popug", "wrong-beak", "203.0.113.100"); outcome(t, err) != "throttled" {
			t.Fatalf("an attacker's second attempt over the ceiling: %v, want throttled", err)
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "192.0.2.10"); err != nil {
			t.Fatalf("the owner's client, which has not been failing, over the ceiling: %v", err)
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "2001:db8:7:7::1"); err != nil {
			t.Fatalf("the owner on a new client over the ceiling: %v", err)
		}
	})
}

// TestClientCeiling: R-SEC-3 — one client trying many usernames (password spraying) is refused
// after ClientMax attempts in the window, for every username, with retryAfter until the window
// ends; other clients are not affected.
func TestClientCeiling(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		p := auth.DefaultThrottle
		p.ClientMax = 10
		h := MustService(t, db, withThrottle(p))
		ctx := context.Background()
		if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
			t.Fatal(err)
		}
		for i := range p.ClientMax {
			if _, err := h.svc.Login(ctx, fmt.Sprintf("user%d", i), "spring2026", "2001:db8:1:2::7"); outcome(t, err) != "wrong" {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
			h.clock.Advance(time.Second)
		}
		// Another address in the same /64 is the same client.
		_, err := h.svc.Login(ctx, "popug", "beak-popug", "[2001:db8:1:2::99]:5555")
		if outcome(t, err) != "throttled" {
			t.Fatalf("the sprayer's /64 with the right beak print: %v, want throttled", err)
		}
		e, _ := errs.As(err)
		if want := int((p.ClientWindow - time.Duration(p.ClientMax)*time.Second).Seconds()); e.Meta["retryAfter"] != want {
			t.Fatalf("retryAfter %v, want %d (the rest of the client's window)", e.Meta["retryAfter"], want)
		}
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "2001:db8:1:3::7"); err != nil {
			t.Fatalf("another client: %v", err)
		}
		h.clock.Advance(p.ClientWindow)
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "2001:db8:1:2::7"); err != nil {
			t.Fatalf("the sprayer's client after its window: %v", err)
		}
	})
}

// TestSuccessesDoNotFillTheClientCeiling: R-SEC-3 — every attempt is counted before its hash,
// and a right one gives its count back: one address (an office behind NAT) logs in all day.
func TestSuccessesDoNotFillTheClientCeiling(t *testing.T) {
	t.Parallel()
	p := auth.DefaultThrottle
	p.ClientMax = 3
	h := MustService(t, storagetest.MustOpen(t, "sqlite3"), withThrottle(p))
	ctx := context.Background()
	if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 * p.ClientMax {
		if _, err := h.svc.Login(ctx, "popug", "beak-popug", "203.0.113.1"); err != nil {
			t.Fatalf("login %d from the office: %v", i+1, err)
		}
	}
}

// TestThrottleRecordsExpire: R-SEC-3 — throttle records are deleted once their window and block
// are over: by Purge, and by a login on its way, at most once a minute.
func TestThrottleRecordsExpire(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		for i := range 7 {
			_, _ = h.svc.Login(ctx, "popug", "wrong-beak", "203.0.113.5")
			_, _ = h.svc.Login(ctx, fmt.Sprintf("other%d", i), "wrong-beak", "203.0.113.5")
		}
		// One client, 8 usernames, 8 pairs.
		if n := h.mustCount(t, "login_limits"); n != 17 {
			t.Fatalf("%d throttle records, want 17", n)
		}
		// After 30 minutes only the client's record (a window of an hour) still matters.
		h.clock.Advance(30 * time.Minute)
		if p, err := h.svc.Purge(ctx); err != nil || p.ThrottleRecords != 16 {
			t.Fatalf("Purge = %+v, %v; want 16 records deleted", p, err)
		}
		h.clock.Advance(31 * time.Minute)
		if p, err := h.svc.Purge(ctx); err != nil || p.ThrottleRecords != 1 {
			t.Fatalf("Purge = %+v, %v; want the client's record deleted", p, err)
		}
		if n := h.mustCount(t, "login_limits"); n != 0 {
			t.Fatalf("%d records remain", n)
		}

		// Logins purge on their way, at most once a minute (unknown client: a pair and a
		// username record each, 15-minute windows).
		ghost := func(name string) int {
			return h.mustCountWhere(t, "login_limits", "key IN ('u:"+name+"', 'p:"+name+" unknown')")
		}
		_, _ = h.svc.Login(ctx, "ghost_a", "wrong-beak", "")
		h.clock.Advance(15*time.Minute - 10*time.Second)
		_, _ = h.svc.Login(ctx, "ghost_b", "wrong-beak", "") // purges: ghost_a's not over yet
		h.clock.Advance(20 * time.Second)
		_, _ = h.svc.Login(ctx, "ghost_c", "wrong-beak", "") // within the minute: no purge
		if n := ghost("ghost_a"); n != 2 {
			t.Fatalf("ghost_a has %d records 10 s after they expired, want 2: a login purged twice within a minute", n)
		}
		h.clock.Advance(41 * time.Second)
		_, _ = h.svc.Login(ctx, "ghost_d", "wrong-beak", "") // a minute after the last purge
		if n := ghost("ghost_a"); n != 0 {
			t.Fatalf("ghost_a has %d expired records after the next login's purge", n)
		}
		if n := ghost("ghost_b") + ghost("ghost_c") + ghost("ghost_d"); n != 6 {
			t.Fatalf("%d live records of ghost_b, ghost_c and ghost_d, want 6", n)
		}
	})
}

// TestImpossibleCredentialsStoreNothing: R-SEC-3, R-AUTH-1 — a username no account can have
// (wrong pattern, over-long) or a beak print no account can have is answered at once with the
// usual message, without a hash and without a throttle record.
func TestImpossibleCredentialsStoreNothing(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		hashes := countHashes(h.svc)
		for _, c := range []struct{ user, pass string }{
			{"", "beak-popug"},
			{"po", "beak-popug"},
			{"Popug", "beak-popug"},
			{strings.Repeat("a", 33), "beak-popug"},
			{strings.Repeat("a", 1<<20), "beak-popug"},
			{"po\x00pug", "beak-popug"},
			{"попуг", "beak-popug"},
			{"popug", ""},
			{"popug", "short"},
			{"popug", strings.Repeat("p", 129)},
			{"popug", strings.Repeat("p", 1<<20)},
			{"popug", "beak\xffprint"},
		} {
			_, err := h.svc.Login(ctx, c.user, c.pass, "203.0.113.9")
			if outcome(t, err) != "wrong" {
				t.Fatalf("Login(%.20q, %.20q) = %v, want the usual refusal", c.user, c.pass, err)
			}
		}
		if n := h.mustCount(t, "login_limits"); n != 0 {
			t.Fatalf("%d throttle records stored for impossible credentials", n)
		}
		if n := hashes.Load(); n != 0 {
			t.Fatalf("%d hashes computed for impossible credentials", n)
		}
	})
}

// TestLoginSecurityEvents: R-SEC-7 — a wrong beak print and a throttled login are each one
// structured line naming the username and client, never the beak print.
func TestLoginSecurityEvents(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, "sqlite3"))
	ctx := context.Background()
	if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
		t.Fatal(err)
	}
	const secret = "n0t-the-beak-print"
	for range auth.DefaultThrottle.PairMax + 1 {
		_, _ = h.svc.Login(ctx, "popug", secret, "203.0.113.44")
	}
	logs := h.logs.String()
	if strings.Contains(logs, secret) {
		t.Fatalf("the beak print is in the log:\n%s", logs)
	}
	for _, want := range []string{"security=login_failed", "security=login_throttled", "username=popug", "client=203.0.113.44", "retryAfter=60"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log has no %q:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "security=login_failed"); n != auth.DefaultThrottle.PairMax {
		t.Errorf("%d login_failed lines, want %d", n, auth.DefaultThrottle.PairMax)
	}
}
