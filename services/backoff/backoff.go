// Package backoff is the one retry schedule of aTES: a wait that doubles after every
// consecutive failure up to a cap, optionally jittered, so that many processes failing together
// (a broker or database restart) do not retry in lockstep (R-EVT-5, R-REL-2, R-REL-3).
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff. Its zero Jitter makes it deterministic.
type Policy struct {
	// Initial is the wait after the first failure.
	Initial time.Duration
	// Max caps every wait, jitter included.
	Max time.Duration
	// Jitter is the fraction of each wait drawn at random, in [0, 1]: a wait of nominal d is
	// uniform in [d·(1−Jitter), d]. Jitter never lengthens a wait, so Max holds.
	Jitter float64
}

// Delay is the nominal wait after the n-th consecutive failure (n ≥ 1): Initial doubled n−1
// times, at most Max (no cap when Max is 0). It has no jitter.
func (p Policy) Delay(n int) time.Duration {
	d := max(p.Initial, 0)
	for i := 1; i < n && (p.Max <= 0 || d < p.Max) && d <= math.MaxInt64/2; i++ {
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return d
}

// Wait is the wait after the n-th consecutive failure: Delay(n) with the policy's jitter.
func (p Policy) Wait(n int) time.Duration {
	return p.jitter(p.Delay(n), rand.Float64)
}

// jitter shortens d by a random share of at most Jitter; draw returns a number in [0, 1).
func (p Policy) jitter(d time.Duration, draw func() float64) time.Duration {
	j := min(max(p.Jitter, 0), 1)
	if j == 0 || d <= 0 {
		return d
	}
	return d - time.Duration(j*draw()*float64(d))
}

// Retry counts consecutive failures under a policy: Next after each failure, Reset after a
// success. It is not safe for concurrent use.
type Retry struct {
	Policy   Policy
	failures int
}

// New returns a Retry with no failure yet.
func New(p Policy) *Retry { return &Retry{Policy: p} }

// Next counts a failure and returns the wait before the next attempt.
func (r *Retry) Next() time.Duration {
	r.failures++
	return r.Policy.Wait(r.failures)
}

// Failures is how many consecutive failures were counted since the last Reset.
func (r *Retry) Failures() int { return r.failures }

// Reset forgets the failures: the next wait is the policy's first again.
func (r *Retry) Reset() { r.failures = 0 }

// Sleep waits for d, or until ctx is done; it reports whether the whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// SleepOr waits for d, or until ctx is done or stop is closed (a nil stop never closes); it
// reports whether the whole wait passed.
func SleepOr(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
