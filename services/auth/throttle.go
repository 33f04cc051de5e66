package auth

import "time"

// ThrottlePolicy limits repeated failed logins for one username (R-AUTH-4): after MaxFailures
// failures within Window, logins are refused for Block, doubling with every further failure up
// to MaxBlock. A successful login clears the record.
type ThrottlePolicy struct {
	MaxFailures int
	Window      time.Duration
	Block       time.Duration
	MaxBlock    time.Duration
}

// DefaultThrottle allows 5 failures in 15 minutes, then blocks 1 minute, up to 15.
var DefaultThrottle = ThrottlePolicy{MaxFailures: 5, Window: 15 * time.Minute, Block: time.Minute, MaxBlock: 15 * time.Minute}

// throttleState is one username's recent failures.
type throttleState struct {
	Failures     int
	WindowStart  time.Time
	BlockedUntil time.Time
}

// blockedFor returns how long logins stay refused at now, or 0.
func (p ThrottlePolicy) blockedFor(s throttleState, now time.Time) time.Duration {
	if now.Before(s.BlockedUntil) {
		return s.BlockedUntil.Sub(now)
	}
	return 0
}

// afterFailure returns the state after one more failure at now.
func (p ThrottlePolicy) afterFailure(s throttleState, now time.Time) throttleState {
	if s.WindowStart.IsZero() || now.Sub(s.WindowStart) > p.Window {
		s = throttleState{WindowStart: now}
	}
	s.Failures++
	if over := s.Failures - p.MaxFailures; over >= 0 {
		block := p.Block
		for i := 0; i < over && block < p.MaxBlock; i++ {
			block *= 2
		}
		block = min(block, p.MaxBlock)
		s.BlockedUntil = now.Add(block)
	}
	return s
}
