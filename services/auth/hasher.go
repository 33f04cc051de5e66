package auth

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/security"
)

// DefaultMaxConcurrentHashes is how many beak prints are hashed at once unless configured:
// twice the processors Go may use (R-SEC-2).
func DefaultMaxConcurrentHashes() int { return 2 * runtime.GOMAXPROCS(0) }

// hashRetryAfter is the retryAfter (seconds) of a refusal for overload: a queue's worth of
// hashes takes well under a second.
const hashRetryAfter = 1

// hasher runs every argon2id computation of the service — login (the dummy hash of unknown
// usernames included), sign-up, account creation, password change and reset — at most
// `slots` at once, each needing its memory cost (19 MiB by default) while it runs. Up to
// `queue` callers wait for a slot (as long as their context lets them); beyond that a call is
// refused at once with UNAVAILABLE and retryAfter, so no burst of logins can grow the heap
// without bound (R-SEC-2).
type hasher struct {
	params  Argon2Params
	slots   chan struct{}
	queue   int64
	waiting atomic.Int64
	log     *slog.Logger
	// onHash, when set, is called as a computation starts (+1) and ends (-1): tests observe
	// the concurrency through it.
	onHash func(delta int)
}

func newHasher(p Argon2Params, concurrency, queue int, log *slog.Logger) *hasher {
	return &hasher{params: p, slots: make(chan struct{}, concurrency), queue: int64(queue), log: log}
}

// overloaded is the refusal of a call that found every slot and the whole queue taken.
func (h *hasher) overloaded(ctx context.Context, op string) error {
	security.Record(ctx, h.log, security.HasherOverloaded, "too many beak prints being hashed; request refused", "operation", op)
	return errs.Retryable(hashRetryAfter, "aTES is busy checking beak prints; try again in a moment")
}

// full reports whether a call now would be refused: every slot and the whole queue taken.
// A caller checks it before work it would have to undo (a throttle attempt).
func (h *hasher) full() bool {
	return len(h.slots) == cap(h.slots) && h.waiting.Load() >= h.queue
}

// acquire takes a slot, waiting in the queue when there is room in it, and returns the
// function that gives the slot back.
func (h *hasher) acquire(ctx context.Context, op string) (release func(), err error) {
	select {
	case h.slots <- struct{}{}:
		return h.release, nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		return nil, h.overloaded(ctx, op)
	}
	defer h.waiting.Add(-1)
	select {
	case h.slots <- struct{}{}:
		return h.release, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *hasher) release() { <-h.slots }

// hash returns the PHC-formatted argon2id hash of a beak print with a fresh salt.
func (h *hasher) hash(ctx context.Context, op, password string) (string, error) {
	release, err := h.acquire(ctx, op)
	if err != nil {
		return "", err
	}
	defer release()
	h.observe(1)
	defer h.observe(-1)
	return hashPassword(h.params, password)
}

// verifyHeld reports whether password matches the encoded hash; the caller holds a slot (see
// acquire): a login counts its attempt first, then takes a slot, and gives the attempt back
// when no slot can be had.
func (h *hasher) verifyHeld(encoded, password string) (bool, error) {
	h.observe(1)
	defer h.observe(-1)
	return verifyPassword(encoded, password)
}

func (h *hasher) observe(delta int) {
	if h.onHash != nil {
		h.onHash(delta)
	}
}
