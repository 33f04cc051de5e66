package auth

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// failures applies one failure at each of the offsets from t0.
func failures(p ThrottlePolicy, s throttleState, offsets ...time.Duration) throttleState {
	for _, d := range offsets {
		s = p.afterFailure(s, t0.Add(d))
	}
	return s
}

// seconds returns n offsets one second apart, starting at from.
func seconds(from time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = from + time.Duration(i)*time.Second
	}
	return out
}

func TestThrottleAfterFailure(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	tests := []struct {
		name         string
		policy       ThrottlePolicy
		start        throttleState
		at           []time.Duration
		wantFailures int
		wantWindow   time.Duration // offset of WindowStart from t0
		// wantBlock is BlockedUntil minus the last failure's time; 0 = not blocked.
		wantBlock time.Duration
	}{
		{"first failure opens the window", p, throttleState{}, seconds(0, 1), 1, 0, 0},
		{"four failures do not block", p, throttleState{}, seconds(0, 4), 4, 0, 0},
		{"fifth failure blocks for Block", p, throttleState{}, seconds(0, 5), 5, 0, time.Minute},
		{"sixth doubles", p, throttleState{}, seconds(0, 6), 6, 0, 2 * time.Minute},
		{"seventh doubles again", p, throttleState{}, seconds(0, 7), 7, 0, 4 * time.Minute},
		{"eighth", p, throttleState{}, seconds(0, 8), 8, 0, 8 * time.Minute},
		{"ninth is capped at MaxBlock", p, throttleState{}, seconds(0, 9), 9, 0, 15 * time.Minute},
		{"tenth stays at MaxBlock", p, throttleState{}, seconds(0, 10), 10, 0, 15 * time.Minute},
		{"thousandth stays at MaxBlock", p, throttleState{Failures: 999, WindowStart: t0}, seconds(0, 1), 1000, 0, 15 * time.Minute},
		{
			"cap that is not a power of two", ThrottlePolicy{MaxFailures: 5, Window: time.Hour, Block: time.Minute, MaxBlock: 90 * time.Second},
			throttleState{}, seconds(0, 6), 6, 0, 90 * time.Second,
		},
		{
			"MaxFailures 1 blocks at once", ThrottlePolicy{MaxFailures: 1, Window: time.Hour, Block: 10 * time.Second, MaxBlock: time.Minute},
			throttleState{}, seconds(0, 1), 1, 0, 10 * time.Second,
		},
		{
			"failure exactly at the window's end still counts", p, throttleState{},
			[]time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 15 * time.Minute}, 5, 0, time.Minute,
		},
		{
			"failure after the window resets the count", p, throttleState{},
			[]time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 15*time.Minute + time.Second}, 1, 15*time.Minute + time.Second, 0,
		},
		{
			"window reset forgets an old block", p, throttleState{Failures: 9, WindowStart: t0, BlockedUntil: t0.Add(15 * time.Minute)},
			[]time.Duration{16 * time.Minute}, 1, 16 * time.Minute, 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := failures(tt.policy, tt.start, tt.at...)
			last := t0.Add(tt.at[len(tt.at)-1])
			if s.Failures != tt.wantFailures {
				t.Errorf("Failures = %d, want %d", s.Failures, tt.wantFailures)
			}
			if want := t0.Add(tt.wantWindow); !s.WindowStart.Equal(want) {
				t.Errorf("WindowStart = %v, want %v", s.WindowStart, want)
			}
			switch {
			case tt.wantBlock == 0 && !s.BlockedUntil.IsZero():
				t.Errorf("BlockedUntil = %v, want not blocked", s.BlockedUntil)
			case tt.wantBlock != 0 && !s.BlockedUntil.Equal(last.Add(tt.wantBlock)):
				t.Errorf("BlockedUntil = last failure + %v, want + %v", s.BlockedUntil.Sub(last), tt.wantBlock)
			}
		})
	}
}

func TestThrottleBlockedFor(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	blocked := throttleState{Failures: 5, WindowStart: t0, BlockedUntil: t0.Add(time.Minute)}
	tests := []struct {
		name  string
		state throttleState
		at    time.Duration
		want  time.Duration
	}{
		{"no record", throttleState{}, 0, 0},
		{"failures below the limit", throttleState{Failures: 4, WindowStart: t0}, time.Second, 0},
		{"at the block's start", blocked, 0, time.Minute},
		{"during the block", blocked, 59 * time.Second, time.Second},
		{"at the block's end", blocked, time.Minute, 0},
		{"after the block", blocked, time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := p.blockedFor(tt.state, t0.Add(tt.at)); got != tt.want {
				t.Fatalf("blockedFor = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestThrottleScenario walks one username through blocks that grow and a window that ends.
func TestThrottleScenario(t *testing.T) {
	t.Parallel()
	p := DefaultThrottle
	var s throttleState
	for i := range 5 {
		if w := p.blockedFor(s, t0.Add(time.Duration(i)*time.Second)); w != 0 {
			t.Fatalf("blocked for %v before failure %d", w, i+1)
		}
		s = p.afterFailure(s, t0.Add(time.Duration(i)*time.Second))
	}
	at := t0.Add(4 * time.Second)
	if w := p.blockedFor(s, at); w != time.Minute {
		t.Fatalf("after 5 failures blocked for %v, want 1m", w)
	}
	// The block ends; one more failure in the same window doubles it.
	at = at.Add(time.Minute)
	if w := p.blockedFor(s, at); w != 0 {
		t.Fatalf("still blocked for %v when the block ended", w)
	}
	s = p.afterFailure(s, at)
	if w := p.blockedFor(s, at); w != 2*time.Minute {
		t.Fatalf("after 6 failures blocked for %v, want 2m", w)
	}
	// Long after the window, a failure starts over without a block.
	at = t0.Add(time.Hour)
	s = p.afterFailure(s, at)
	if s.Failures != 1 || p.blockedFor(s, at) != 0 {
		t.Fatalf("after the window: failures %d, blocked %v; want 1 and none", s.Failures, p.blockedFor(s, at))
	}
}
