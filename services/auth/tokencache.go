package auth

import (
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// How many verified tokens a Verifier remembers, and for how long at most.
const (
	verifiedTokens   = 4096
	verifiedTokenTTL = time.Minute
)

// cachedToken is what verifying a token's signature and claims established, usable from the
// moment it was verified until until (its expiry, or sooner).
type cachedToken struct {
	token Token
	from  time.Time
	until time.Time
}

// tokenCache remembers verified tokens by their exact text, so only a token that was itself
// verified can hit. An entry is used only while from ≤ now < until (the verifier's clock), with
// until the token's expiry or ttl after verification, whichever comes first; the least recently
// used entry goes when limit are held, and entries leave after ttl of wall time anyway. It
// never remembers a refusal, and it never answers for the account or the session: the verifier
// checks those on every call.
type tokenCache struct {
	lru *expirable.LRU[string, cachedToken]
	ttl time.Duration
}

func newTokenCache(limit int, ttl time.Duration) tokenCache {
	return tokenCache{lru: expirable.NewLRU[string, cachedToken](limit, nil, ttl), ttl: ttl}
}

// get returns the token's entry when it is valid at now.
func (c tokenCache) get(token string, now time.Time) (Token, bool) {
	t, ok := c.lru.Get(token)
	if !ok || now.Before(t.from) || !now.Before(t.until) {
		return Token{}, false
	}
	return t.token, true
}

// put remembers a token verified at now.
func (c tokenCache) put(token string, t Token, now time.Time) {
	until := t.ExpiresAt
	if limit := now.Add(c.ttl); limit.Before(until) {
		until = limit
	}
	if !now.Before(until) {
		return
	}
	c.lru.Add(token, cachedToken{token: t, from: now, until: until})
}

// len is how many tokens are remembered.
func (c tokenCache) len() int { return c.lru.Len() }

// expiringSet remembers ids for ttl by the caller's clock (and drops them after ttl of wall
// time, or the least recently used when limit are held).
type expiringSet struct {
	lru *expirable.LRU[uuid.UUID, time.Time]
	ttl time.Duration
}

func newExpiringSet(limit int, ttl time.Duration) *expiringSet {
	return &expiringSet{lru: expirable.NewLRU[uuid.UUID, time.Time](limit, nil, ttl), ttl: ttl}
}

func (s *expiringSet) add(id uuid.UUID, now time.Time) { s.lru.Add(id, now.Add(s.ttl)) }

func (s *expiringSet) has(id uuid.UUID, now time.Time) bool {
	until, ok := s.lru.Get(id)
	return ok && now.Before(until)
}
