package auth

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/event"
)

// maxEndedSessions bounds the ended sessions a gateway remembers. Each is kept only while an
// access token of it could still be valid (its tokensExpireBy); beyond the bound the one whose
// tokens expire first is forgotten first.
const maxEndedSessions = 1 << 18

// RevocationTopics are the events a gateway's revocation feed subscribes to and hands to
// Revocations.ApplyEvent.
var RevocationTopics = []string{EventAccountCreated, EventAccountUpdated, EventSessionEnded}

// AccountState is what a gateway knows of an account for its tokens: the current version
// (a token issued for an older one is outdated) and whether it is active.
type AccountState struct {
	Version int64
	Active  bool
}

// Revocations is what a gateway knows of every account and of the sessions that ended
// recently (R-AUTH-5, R-SESS-2, R-SESS-3): seeded from the auth database at start and after a
// gap in its event feed (Service.SeedRevocations), kept current by account and session events
// (ApplyEvent), so a deactivation or a logout reaches the gateway within the event latency.
type Revocations struct {
	mu       sync.RWMutex
	accounts map[uuid.UUID]AccountState
	ended    map[uuid.UUID]time.Time // session → when its last access token expires
	order    []endedSession          // ended sessions in the order they were added
	now      func() time.Time

	hooksMu  sync.Mutex
	hooks    map[int]func(uuid.UUID)
	nextHook int
}

type endedSession struct {
	id    uuid.UUID
	until time.Time
}

// NewRevocations returns an empty set on the wall clock.
func NewRevocations() *Revocations { return NewRevocationsWithClock(time.Now) }

// NewRevocationsWithClock returns an empty set that forgets an ended session once now is past
// the expiry of its last access token; give it the verifier's clock.
func NewRevocationsWithClock(now func() time.Time) *Revocations {
	return &Revocations{accounts: map[uuid.UUID]AccountState{}, ended: map[uuid.UUID]time.Time{}, now: now, hooks: map[int]func(uuid.UUID){}}
}

// OnChange registers fn to be called with an account's id whenever its state changed or one
// of its sessions ended, so a gateway can end live subscriptions that lost their right
// (R-SESS-4). fn is called outside the set's locks, on the goroutine that made the change (the
// event feed): it must return quickly and never wait. remove unregisters it.
func (r *Revocations) OnChange(fn func(accountID uuid.UUID)) (remove func()) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	id := r.nextHook
	r.nextHook++
	r.hooks[id] = fn
	return func() {
		r.hooksMu.Lock()
		defer r.hooksMu.Unlock()
		delete(r.hooks, id)
	}
}

func (r *Revocations) changed(accountID uuid.UUID) {
	r.hooksMu.Lock()
	fns := make([]func(uuid.UUID), 0, len(r.hooks))
	for _, fn := range r.hooks {
		fns = append(fns, fn)
	}
	r.hooksMu.Unlock()
	for _, fn := range fns {
		fn(accountID)
	}
}

// Observe records an account's state at a version; versions older than (or as old as) the
// known one are ignored.
func (r *Revocations) Observe(id uuid.UUID, version int64, active bool) {
	r.observe(id, AccountState{Version: version, Active: active})
}

func (r *Revocations) observe(id uuid.UUID, st AccountState) {
	r.mu.Lock()
	cur, ok := r.accounts[id]
	if ok && cur.Version >= st.Version {
		r.mu.Unlock()
		return
	}
	r.accounts[id] = st
	r.mu.Unlock()
	r.changed(id)
}

// Account returns the known state of an account.
func (r *Revocations) Account(id uuid.UUID) (AccountState, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	st, ok := r.accounts[id]
	return st, ok
}

// EndSession records that a session of the account ended: its access tokens, valid until
// tokensExpireBy at the latest, are refused from now on (R-SESS-2).
func (r *Revocations) EndSession(sessionID, accountID uuid.UUID, tokensExpireBy time.Time) {
	now := r.now()
	r.mu.Lock()
	if cur, ok := r.ended[sessionID]; ok && !tokensExpireBy.After(cur) {
		r.mu.Unlock()
		return
	}
	r.ended[sessionID] = tokensExpireBy
	r.order = append(r.order, endedSession{id: sessionID, until: tokensExpireBy})
	r.prune(now)
	r.mu.Unlock()
	r.changed(accountID)
}

// prune forgets ended sessions whose tokens have all expired, and the oldest beyond the bound.
// The order is that of EndSession calls, close to that of expiry; an entry out of order waits
// behind an earlier one a little longer, which costs memory only.
func (r *Revocations) prune(now time.Time) {
	n := 0
	for n < len(r.order) {
		e := r.order[n]
		if cur, ok := r.ended[e.id]; ok && cur.Equal(e.until) {
			if !now.After(e.until) && len(r.ended) <= maxEndedSessions {
				break
			}
			delete(r.ended, e.id)
		}
		n++
	}
	r.order = r.order[n:]
}

// SessionEnded reports whether the session is known to have ended.
func (r *Revocations) SessionEnded(sessionID uuid.UUID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.ended[sessionID]
	return ok
}

// endedSessions is how many ended sessions are remembered.
func (r *Revocations) endedSessions() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.ended)
}

// ApplyEvent keeps the set current from account.created, account.updated and session.ended
// (RevocationTopics); other events are ignored.
func (r *Revocations) ApplyEvent(e event.Envelope) error {
	switch e.Name {
	case EventAccountCreated, EventAccountUpdated:
		var d AccountData
		if err := e.DecodeData(&d); err != nil {
			return err
		}
		id, err := uuid.Parse(d.AccountID)
		if err != nil {
			return fmt.Errorf("auth: event %s: account id: %w", e.ID, err)
		}
		r.Observe(id, d.Version, d.Active)
	case EventSessionEnded:
		var d SessionEndedData
		if err := e.DecodeData(&d); err != nil {
			return err
		}
		sid, err := uuid.Parse(d.SessionID)
		if err != nil {
			return fmt.Errorf("auth: event %s: session id: %w", e.ID, err)
		}
		id, err := uuid.Parse(d.AccountID)
		if err != nil {
			return fmt.Errorf("auth: event %s: account id: %w", e.ID, err)
		}
		r.EndSession(sid, id, d.TokensExpireBy)
	}
	return nil
}
