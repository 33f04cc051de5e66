// Package security records security events (R-SEC-7): one structured log line and one counted
// metric per event — failed logins, throttled logins, refused tokens, refused authorizations,
// requests refused by a cost limit — without secrets (never a password, token or request body).
package security

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
)

// Kind names a security event; it is the log line's "security" attribute and the metric's
// "event" label.
type Kind string

// The security events aTES records.
const (
	// LoginFailed: a login with a wrong username or beak print, or of a deactivated account.
	LoginFailed Kind = "login_failed"
	// LoginThrottled: a login refused before its beak print was checked (R-SEC-3).
	LoginThrottled Kind = "login_throttled"
	// HasherOverloaded: a login, sign-up or password change refused because too many beak
	// prints were being hashed (R-SEC-2).
	HasherOverloaded Kind = "hasher_overloaded"
	// TokenRefused: an access or refresh token that was presented and refused (expired,
	// revoked, outdated, forged).
	TokenRefused Kind = "token_refused"
	// SessionReused: a rotated refresh token presented again; its session ends (R-SESS-1).
	SessionReused Kind = "session_reused"
	// Forbidden: an authenticated caller refused an operation its role does not allow.
	Forbidden Kind = "forbidden"
	// LimitExceeded: a request refused by a cost limit (R-SEC-2).
	LimitExceeded Kind = "limit_exceeded"
)

var events = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ates_security_events_total",
	Help: "Security events by kind: failed and throttled logins, refused tokens and authorizations, requests over a cost limit (R-SEC-7).",
}, []string{"event"})

// Record logs a security event at warning level with the given attributes (never secrets) and
// counts it.
func Record(ctx context.Context, log *slog.Logger, kind Kind, msg string, attrs ...any) {
	events.WithLabelValues(string(kind)).Inc()
	if log != nil {
		log.WarnContext(ctx, msg, append([]any{"security", string(kind)}, attrs...)...)
	}
}

// Count returns how many events of the kind were recorded by this process (for tests).
func Count(kind Kind) float64 {
	var m dto.Metric
	if err := events.WithLabelValues(string(kind)).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
