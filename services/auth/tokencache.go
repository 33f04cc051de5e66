package auth

import (
	"sync"
	"time"

	"github.com/uberpopug/ates/services/identity"
)

// How many verified tokens a Verifier remembers, and for how long at most.
const (
	verifiedTokens   = 4096
	verifiedTokenTTL = time.Minute
)

// verifiedToken is what verifying a token's signature and claims established: valid from the
// moment it was verified until until (its expiry, or sooner).
type verifiedToken struct {
	actor   identity.Actor
	version int64 // the account version the token was issued for
	from    time.Time
	until   time.Time
}

// tokenCache remembers verified tokens by their exact text, so only a token that was itself
// verified can hit. An entry is used only while from ≤ now < until, with until the token's
// expiry or ttl after verification, whichever comes first; the cache holds at most limit entries.
// It never remembers a refusal, and it never answers for the revocations: Verify checks those
// on every call.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[string]verifiedToken
	limit   int
	ttl     time.Duration
}

func newTokenCache(limit int, ttl time.Duration) tokenCache {
	return tokenCache{entries: make(map[string]verifiedToken), limit: limit, ttl: ttl}
}

// get returns the token's entry when it is valid at now.
func (c *tokenCache) get(token string, now time.Time) (verifiedToken, bool) {
	c.mu.RLock()
	t, ok := c.entries[token]
	c.mu.RUnlock()
	if !ok || now.Before(t.from) || !now.Before(t.until) {
		return verifiedToken{}, false
	}
	return t, true
}

// put remembers a token verified at now. When full, it drops the entries no longer valid and,
// if that is not enough, arbitrary ones down to three quarters of limit.
func (c *tokenCache) put(token string, t verifiedToken, now time.Time) {
	if limit := now.Add(c.ttl); limit.Before(t.until) {
		t.until = limit
	}
	if !now.Before(t.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[token]; !ok && len(c.entries) >= c.limit {
		for k, e := range c.entries {
			if now.Before(e.from) || !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries { // map order: arbitrary
			if len(c.entries) <= c.limit*3/4 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[token] = t
}

// len is how many tokens are remembered.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
