package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/netip"
	"strings"
	"time"
)

// ThrottlePolicy limits login attempts (R-AUTH-4, R-SEC-3) under three keys at once. Every
// attempt is counted before its beak print is checked; a success gives its count back.
//
//   - Per username and client: after PairMax attempts within PairWindow, that client waits
//     PairBlock before its next attempt for that username, doubling with every further attempt
//     in the window up to PairMaxBlock. This is the lockout, and it holds only that client.
//   - Per client, across usernames: at most ClientMax attempts within ClientWindow (password
//     spraying from one address).
//   - Per username, across clients: beyond UserMax attempts within UserWindow (guessing from
//     many addresses), only clients without an attempt for that username within PairWindow are
//     admitted, one attempt each. The owner, on a client that has not been failing, still gets
//     in with the right beak print.
//
// The design and what it leaves a botnet: docs/security.md.
type ThrottlePolicy struct {
	PairMax      int
	PairWindow   time.Duration
	PairBlock    time.Duration
	PairMaxBlock time.Duration
	ClientMax    int
	ClientWindow time.Duration
	UserMax      int
	UserWindow   time.Duration
}

// DefaultThrottle: 5 attempts per username and client in 15 minutes, then blocks of 1 minute
// doubling up to 15; 100 attempts per client in an hour; beyond 20 attempts per username in
// 15 minutes, one attempt per client that has not tried that username in 15 minutes.
var DefaultThrottle = ThrottlePolicy{
	PairMax: 5, PairWindow: 15 * time.Minute, PairBlock: time.Minute, PairMaxBlock: 15 * time.Minute,
	ClientMax: 100, ClientWindow: time.Hour,
	UserMax: 20, UserWindow: 15 * time.Minute,
}

// limitState is one throttle record: attempts counted in the window that started at
// WindowStart, and the block they earned (pair records only).
type limitState struct {
	Failures     int
	WindowStart  time.Time
	BlockedUntil time.Time
}

// attemptState is the three records one login attempt is judged by.
type attemptState struct {
	Pair, Client, User limitState
}

// inWindow returns s with its count started afresh when its window is over at now (a block
// outlives its window).
func inWindow(s limitState, window time.Duration, now time.Time) limitState {
	if s.WindowStart.IsZero() || !now.Before(s.WindowStart.Add(window)) {
		s.Failures, s.WindowStart = 0, now
	}
	return s
}

// admit judges an attempt at now: either it is admitted, and the returned state counts it, or
// it is refused for wait, and nothing changes (a refused attempt earns nothing more).
func (p ThrottlePolicy) admit(s attemptState, now time.Time) (next attemptState, wait time.Duration, ok bool) {
	pair := inWindow(s.Pair, p.PairWindow, now)
	client := inWindow(s.Client, p.ClientWindow, now)
	user := inWindow(s.User, p.UserWindow, now)
	if now.Before(pair.BlockedUntil) {
		wait = max(wait, pair.BlockedUntil.Sub(now))
	}
	if client.Failures >= p.ClientMax {
		wait = max(wait, client.WindowStart.Add(p.ClientWindow).Sub(now))
	}
	if user.Failures >= p.UserMax && pair.Failures > 0 {
		// The username is under attack and this client has had its attempt: it waits until
		// either its own window or the username's is over.
		end := minTime(pair.WindowStart.Add(p.PairWindow), user.WindowStart.Add(p.UserWindow))
		wait = max(wait, end.Sub(now))
	}
	if wait > 0 {
		return s, wait, false
	}
	pair.Failures++
	if over := pair.Failures - p.PairMax; over >= 0 {
		pair.BlockedUntil = now.Add(p.block(over))
	}
	client.Failures++
	user.Failures++
	return attemptState{Pair: pair, Client: client, User: user}, 0, true
}

// block is the pair block after over attempts beyond PairMax: PairBlock doubled over times, at
// most PairMaxBlock.
func (p ThrottlePolicy) block(over int) time.Duration {
	b := p.PairBlock
	for i := 0; i < over && b < p.PairMaxBlock; i++ {
		b *= 2
	}
	return min(b, p.PairMaxBlock)
}

// succeeded returns the state after an admitted attempt turned out right: the pair's record
// is cleared, and the client's and the username's counts get the attempt back (a busy office
// behind one address logs in all day without reaching the client ceiling).
func (p ThrottlePolicy) succeeded(s attemptState) attemptState {
	s.Pair = limitState{}
	s.Client.Failures = max(s.Client.Failures-1, 0)
	s.User.Failures = max(s.User.Failures-1, 0)
	return s
}

// givenBack returns the state after an admitted attempt was not checked after all (no hasher
// slot): every count gets it back, and a pair block it earned is lifted (no block was in force
// when it was admitted).
func (p ThrottlePolicy) givenBack(s attemptState) attemptState {
	s.Pair.Failures = max(s.Pair.Failures-1, 0)
	if s.Pair.Failures < p.PairMax {
		s.Pair.BlockedUntil = time.Time{}
	}
	s.Client.Failures = max(s.Client.Failures-1, 0)
	s.User.Failures = max(s.User.Failures-1, 0)
	return s
}

// expiry is when a record stops mattering: its window and its block are both over. A record
// with nothing counted and no block is over at once.
func expiry(s limitState, window time.Duration) time.Time {
	if s.Failures == 0 {
		return s.BlockedUntil
	}
	return maxTime(s.WindowStart.Add(window), s.BlockedUntil)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Throttle keys. A username is at most 32 characters of [a-z0-9_.-] (checked before any key
// is made) and a client key at most 43, so a key is at most 80 characters.
const (
	maxClientKeyLen = 43
	unknownClient   = "unknown"
)

// limitKeys are the three records of an attempt, in the order they are locked (sorted, so two
// logins never wait for each other's records in opposite orders).
type limitKeys struct{ client, pair, user string }

// keysFor returns the records of an attempt. The unknown client has no client record: one
// ceiling shared by every caller whose address the gateway did not pass would let anyone stop
// everyone's logins; its attempts are still counted per username and per username and client.
func keysFor(username, client string) limitKeys {
	k := limitKeys{pair: "p:" + username + " " + client, user: "u:" + username}
	if client != unknownClient {
		k.client = "c:" + client
	}
	return k
}

// ordered returns the keys that exist, in lock order.
func (k limitKeys) ordered() []string {
	out := make([]string, 0, 3)
	for _, key := range []string{k.client, k.pair, k.user} {
		if key != "" {
			out = append(out, key)
		}
	}
	return out
}

// ClientKey reduces the caller's network address, as the gateway determined it, to the client
// it is throttled as: an IPv4 address as is, an IPv6 address as its /64 (one subscriber's
// network), "ip:port" and "[ip]:port" without the port. Anything else is hashed to a bounded
// key; an empty address is the one "unknown" client.
func ClientKey(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return unknownClient
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, perr := netip.ParseAddrPort(addr); perr == nil {
			ip, err = ap.Addr(), nil
		} else if host, _, serr := net.SplitHostPort(addr); serr == nil {
			ip, err = netip.ParseAddr(host)
		}
	}
	if err == nil {
		ip = ip.WithZone("").Unmap()
		if ip.Is4() {
			return ip.String()
		}
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	sum := sha256.Sum256([]byte(addr))
	return "h:" + hex.EncodeToString(sum[:16])
}
