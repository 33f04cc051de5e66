package auth

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// at is t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// TestThrottleAdmit: R-SEC-3, R-AUTH-4 — the policy's verdict on one attempt, from the three
// records it is judged by.
func TestThrottleAdmit(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	fresh := func(n int, start time.Duration) limitState { return limitState{Failures: n, WindowStart: at(start)} }
	blocked := func(n int, until time.Duration) limitState {
		return limitState{Failures: n, WindowStart: t0, BlockedUntil: at(until)}
	}
	tests := []struct {
		name     string
		state    attemptState
		now      time.Duration
		wantOK   bool
		wantWait time.Duration
		// on admission: the pair's count and block (offset from now; 0 = none) after it
		wantPair  int
		wantBlock time.Duration
	}{
		{"first attempt", attemptState{}, 0, true, 0, 1, 0},
		{"fourth pair attempt", attemptState{Pair: fresh(3, 0)}, time.Minute, true, 0, 4, 0},
		{"fifth pair attempt is admitted and blocks the next for a minute", attemptState{Pair: fresh(4, 0)}, time.Minute, true, 0, 5, time.Minute},
		{"while blocked: refused for the rest of the block", attemptState{Pair: blocked(5, 2*time.Minute)}, time.Minute + 30*time.Second, false, 30 * time.Second, 0, 0},
		{"after the block: admitted, the block doubles", attemptState{Pair: blocked(5, 2*time.Minute)}, 2 * time.Minute, true, 0, 6, 2 * time.Minute},
		{"eighth: eight minutes", attemptState{Pair: blocked(7, 5*time.Minute)}, 5 * time.Minute, true, 0, 8, 8 * time.Minute},
		{"ninth: capped at fifteen", attemptState{Pair: blocked(8, 10*time.Minute)}, 10 * time.Minute, true, 0, 9, 15 * time.Minute},
		{"hundredth: still fifteen", attemptState{Pair: blocked(99, 10*time.Minute)}, 10 * time.Minute, true, 0, 100, 15 * time.Minute},
		{"window over: counting starts afresh", attemptState{Pair: fresh(4, 0)}, 15 * time.Minute, true, 0, 1, 0},
		{"a block outlives its window", attemptState{Pair: blocked(9, 20*time.Minute)}, 16 * time.Minute, false, 4 * time.Minute, 0, 0},
		{"client ceiling reached: refused until the client's window ends", attemptState{Client: fresh(100, 0)}, 20 * time.Minute, false, 40 * time.Minute, 0, 0},
		{"client one below the ceiling", attemptState{Client: fresh(99, 0)}, 20 * time.Minute, true, 0, 1, 0},
		{"client window over", attemptState{Client: fresh(100, 0)}, time.Hour, true, 0, 1, 0},
		{"username ceiling, fresh client: admitted (one attempt)", attemptState{User: fresh(20, 0)}, time.Minute, true, 0, 1, 0},
		{"username ceiling far above, fresh client: admitted", attemptState{User: fresh(5000, 0)}, time.Minute, true, 0, 1, 0},
		{"username ceiling, client already tried: waits for the earlier window end", attemptState{Pair: fresh(1, 2*time.Minute), User: fresh(20, 0)}, 3 * time.Minute, false, 12 * time.Minute, 0, 0},
		{"username ceiling, client's own window ends first", attemptState{Pair: fresh(1, 2*time.Minute), User: fresh(20, 10*time.Minute)}, 11 * time.Minute, false, 6 * time.Minute, 0, 0},
		{"username below ceiling, client tried before: admitted", attemptState{Pair: fresh(3, 0), User: fresh(19, 0)}, time.Minute, true, 0, 4, 0},
		{"username ceiling over with its window", attemptState{Pair: fresh(1, 10*time.Minute), User: fresh(20, 0)}, 15 * time.Minute, true, 0, 2, 0},
		{"the longest of several refusals", attemptState{Pair: blocked(5, 2*time.Minute), Client: fresh(100, 0)}, time.Minute, false, 59 * time.Minute, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := at(tt.now)
			next, wait, ok := p.admit(tt.state, now)
			if ok != tt.wantOK || wait != tt.wantWait {
				t.Fatalf("admit = %v, wait %v; want %v, wait %v", ok, wait, tt.wantOK, tt.wantWait)
			}
			if !ok {
				if next != tt.state {
					t.Fatalf("a refused attempt changed the state: %+v → %+v", tt.state, next)
				}
				return
			}
			if next.Pair.Failures != tt.wantPair {
				t.Errorf("pair count %d, want %d", next.Pair.Failures, tt.wantPair)
			}
			var block time.Duration
			if !next.Pair.BlockedUntil.IsZero() && next.Pair.BlockedUntil.After(now) {
				block = next.Pair.BlockedUntil.Sub(now)
			}
			if block != tt.wantBlock {
				t.Errorf("pair block %v, want %v", block, tt.wantBlock)
			}
			if next.Client.Failures < 1 || next.User.Failures < 1 {
				t.Errorf("client %d, username %d: an admitted attempt counts under every key", next.Client.Failures, next.User.Failures)
			}
		})
	}
}

// TestThrottleSucceededAndGivenBack: R-SEC-3 — a success clears the pair and gives the client
// and the username their attempt back; an attempt given back (never checked) leaves the records
// as they were before it, its block lifted.
func TestThrottleSucceededAndGivenBack(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	before := attemptState{
		Pair:   limitState{Failures: 4, WindowStart: t0},
		Client: limitState{Failures: 10, WindowStart: t0},
		User:   limitState{Failures: 7, WindowStart: t0},
	}
	now := at(time.Minute)
	admitted, _, ok := p.admit(before, now)
	if !ok || admitted.Pair.BlockedUntil.IsZero() {
		t.Fatalf("the fifth attempt: admitted %v, state %+v; want admitted with a block", ok, admitted)
	}
	s := p.succeeded(admitted)
	if s.Pair != (limitState{}) || s.Client.Failures != 10 || s.User.Failures != 7 {
		t.Fatalf("after a success: %+v; want the pair cleared and client 10, username 7", s)
	}
	g := p.givenBack(admitted)
	if g != before {
		t.Fatalf("given back: %+v; want %+v", g, before)
	}
	if z := p.succeeded(attemptState{}); z.Client.Failures != 0 || z.User.Failures != 0 {
		t.Fatalf("a success never counts below zero: %+v", z)
	}
}

// TestThrottleExpiry: R-SEC-3 — a record lasts while its window or its block does.
func TestThrottleExpiry(t *testing.T) {
	t.Parallel()
	w := 15 * time.Minute
	tests := []struct {
		name string
		s    limitState
		want time.Time
	}{
		{"nothing counted", limitState{}, time.Time{}},
		{"counted", limitState{Failures: 2, WindowStart: t0}, at(w)},
		{"block beyond the window", limitState{Failures: 9, WindowStart: t0, BlockedUntil: at(20 * time.Minute)}, at(20 * time.Minute)},
		{"block within the window", limitState{Failures: 5, WindowStart: t0, BlockedUntil: at(time.Minute)}, at(w)},
	}
	for _, tt := range tests {
		if got := expiry(tt.s, w); !got.Equal(tt.want) {
			t.Errorf("%s: expiry %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestThrottleAgainstABotnet: R-SEC-3 — K addresses guessing one username get at most UserMax
// attempts plus one per address in a window, and the owner on an address of their own still
// gets in; one address cannot spray past the client ceiling.
func TestThrottleAgainstABotnet(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	const k = 200
	user := limitState{}
	clients := make([]limitState, k)
	pairs := make([]limitState, k)
	admitted := 0
	now := t0
	for range 10 {
		for i := range k {
			next, _, ok := p.admit(attemptState{Pair: pairs[i], Client: clients[i], User: user}, now)
			if ok {
				admitted++
				pairs[i], clients[i], user = next.Pair, next.Client, next.User
			}
			now = now.Add(100 * time.Millisecond)
		}
	}
	// 2 000 attempts within about three and a half minutes, one window.
	if max := p.UserMax + k; admitted > max {
		t.Fatalf("%d attempts admitted, want at most UserMax + K = %d", admitted, max)
	}
	if _, _, ok := p.admit(attemptState{User: user}, now); !ok {
		t.Fatal("the owner's fresh address is refused while the username is under attack")
	}
	// One address spraying many usernames stops at the client ceiling.
	var client limitState
	sprayed := 0
	for i := range 1000 {
		next, _, ok := p.admit(attemptState{Client: client}, now.Add(time.Duration(i)*time.Second))
		if ok {
			sprayed++
			client = next.Client
		}
	}
	if sprayed != p.ClientMax {
		t.Fatalf("one address got %d attempts across usernames, want %d", sprayed, p.ClientMax)
	}
}

// TestClientKey: R-SEC-3 — clients are IPv4 addresses, IPv6 /64s, ports dropped, anything else
// hashed to a bounded key, and an empty address is the unknown client.
func TestClientKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "unknown"},
		{"   ", "unknown"},
		{"203.0.113.7", "203.0.113.7"},
		{"203.0.113.7:54321", "203.0.113.7"},
		{" 203.0.113.7 ", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tt := range tests {
		if got := ClientKey(tt.in); got != tt.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, odd := range []string{"not an address", strings.Repeat("x", 1<<20), "unknown", "h:abc"} {
		got := ClientKey(odd)
		if !strings.HasPrefix(got, "h:") || len(got) > maxClientKeyLen {
			t.Errorf("ClientKey(%.20q…) = %q, want a bounded hash key", odd, got)
		}
		if got != ClientKey(odd) {
			t.Errorf("ClientKey(%.20q…) is not stable", odd)
		}
	}
	if ClientKey("a") == ClientKey("b") {
		t.Error("different unparseable addresses share a key")
	}
	longest := keysFor(strings.Repeat("a", 32), ClientKey("x"))
	for _, k := range longest.ordered() {
		if len(k) > 96 {
			t.Errorf("key %q is longer than the column", k)
		}
	}
	if k := longest.ordered(); len(k) != 3 || !(k[0] < k[1] && k[1] < k[2]) {
		t.Errorf("keys %v are not three in lock order", k)
	}
	// The unknown client shares no ceiling: it has no client record.
	if k := keysFor("popug", ClientKey("")).ordered(); len(k) != 2 || k[0] != "p:popug unknown" || k[1] != "u:popug" {
		t.Errorf("keys of the unknown client = %v, want the pair's and the username's", k)
	}
}
