package backoff

import (
	"context"
	"testing"
	"time"
)

// TestDelay: the wait doubles per consecutive failure and stops at the cap (R-EVT-5, R-REL-3).
func TestDelay(t *testing.T) {
	t.Parallel()
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	cases := []struct {
		n    int
		want time.Duration
	}{
		{0, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{60, time.Second},
		{1 << 30, time.Second},
	}
	for _, c := range cases {
		if got := p.Delay(c.n); got != c.want {
			t.Errorf("Delay(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	if got := (Policy{Initial: time.Second}).Delay(20); got != time.Second<<19 {
		t.Errorf("without a cap Delay(20) = %v, want %v", got, time.Second<<19)
	}
	if got := (Policy{Initial: time.Second}).Delay(1000); got <= 0 {
		t.Errorf("without a cap Delay(1000) = %v, want a positive wait (no overflow)", got)
	}
}

// TestJitterStaysWithinTheCap: a jittered wait is never longer than the nominal one nor the cap,
// never shorter than (1−Jitter) of it (R-REL-3: capped, jittered reconnects).
func TestJitterStaysWithinTheCap(t *testing.T) {
	t.Parallel()
	p := Policy{Initial: time.Second, Max: 4 * time.Second, Jitter: 0.5}
	cases := []struct {
		name string
		draw float64
		n    int
		want time.Duration
	}{
		{"no share drawn", 0, 1, time.Second},
		{"half drawn", 0.5, 1, 750 * time.Millisecond},
		{"almost all drawn", 0.999999, 3, 2*time.Second + 2*time.Microsecond},
		{"capped", 0, 10, 4 * time.Second},
		{"capped, jittered", 0.5, 10, 3 * time.Second},
	}
	for _, c := range cases {
		if got := p.jitter(p.Delay(c.n), func() float64 { return c.draw }); got != c.want {
			t.Errorf("%s: jitter = %v, want %v", c.name, got, c.want)
		}
	}
	for n := 1; n < 20; n++ {
		for range 50 {
			w := p.Wait(n)
			if w > p.Delay(n) || w > p.Max || w < p.Delay(n)/2 {
				t.Fatalf("Wait(%d) = %v outside [%v, %v]", n, w, p.Delay(n)/2, p.Delay(n))
			}
		}
	}
	if got := (Policy{Initial: time.Second, Jitter: 0}).Wait(2); got != 2*time.Second {
		t.Errorf("without jitter Wait(2) = %v, want 2s", got)
	}
}

// TestRetryCountsAndResets: Next counts consecutive failures, Reset starts over.
func TestRetryCountsAndResets(t *testing.T) {
	t.Parallel()
	r := New(Policy{Initial: time.Millisecond, Max: 8 * time.Millisecond})
	var got []time.Duration
	for range 5 {
		got = append(got, r.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	if r.Failures() != 5 {
		t.Errorf("Failures = %d, want 5", r.Failures())
	}
	r.Reset()
	if w := r.Next(); w != time.Millisecond || r.Failures() != 1 {
		t.Errorf("after Reset: wait %v, failures %d; want 1ms, 1", w, r.Failures())
	}
}

// TestSleepEndsWithItsContext: a wait ends when its context or stop channel does.
func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep on a cancelled context reported a whole wait")
	}
	stop := make(chan struct{})
	close(stop)
	if SleepOr(context.Background(), stop, time.Hour) {
		t.Error("SleepOr with a closed stop reported a whole wait")
	}
	if !Sleep(context.Background(), time.Microsecond) || !SleepOr(context.Background(), nil, time.Microsecond) {
		t.Error("a short wait did not pass whole")
	}
}
