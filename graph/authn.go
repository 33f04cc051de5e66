package graph

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/security"
)

// TokenVerifier turns an access token into the acting account and its session
// (auth.Verifier), checking it against what the gateway knows now: expiry, deactivation, role
// changes, ended sessions.
type TokenVerifier interface {
	VerifyToken(token string) (auth.Token, error)
}

type (
	authErrKey struct{}
	sessionKey struct{}
)

// gate is the one authorization path of the gateway (R-SEC-1): every HTTP request and every
// operation on a WebSocket is authenticated through it, with the rights its credential has at
// that moment.
type gate struct {
	verifier TokenVerifier
	log      *slog.Logger
}

// authenticate verifies a "Bearer <token>" credential into ctx: the actor when valid, the
// reason when not (logged and counted, R-SEC-7). A missing credential leaves ctx anonymous.
func (g gate) authenticate(ctx context.Context, header string) context.Context {
	if header == "" {
		return ctx
	}
	// The scheme is case-insensitive (RFC 7235 §2.1): "bearer <token>" is accepted too.
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		security.Record(ctx, g.log, security.TokenRefused, "malformed Authorization header", "client", ClientFrom(ctx))
		return context.WithValue(ctx, authErrKey{}, errs.E(errs.Unauthenticated, "the Authorization header must be \"Bearer <token>\""))
	}
	t, err := g.verifier.VerifyToken(strings.TrimSpace(tok))
	if err != nil {
		security.Record(ctx, g.log, security.TokenRefused, "access token refused", "reason", auth.RefusalReason(err), "client", ClientFrom(ctx))
		return context.WithValue(ctx, authErrKey{}, err)
	}
	return context.WithValue(identity.WithActor(ctx, t.Actor), sessionKey{}, t.SessionID)
}

// sessionOf returns the session of the request's access token (uuid.Nil for none).
func sessionOf(ctx context.Context) uuid.UUID {
	id, _ := ctx.Value(sessionKey{}).(uuid.UUID)
	return id
}

// middleware authenticates HTTP requests from the Authorization header (R-API-2). A WebSocket
// upgrade is left to the WebSocket transport, which authenticates each of its operations.
func (g gate) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(g.authenticate(r.Context(), r.Header.Get("Authorization"))))
	})
}

// actor returns the authenticated actor, or UNAUTHENTICATED saying why there is none.
func actor(ctx context.Context) (identity.Actor, error) {
	if a, ok := identity.ActorFrom(ctx); ok {
		return a, nil
	}
	if err, ok := ctx.Value(authErrKey{}).(error); ok {
		return identity.Actor{}, err
	}
	return identity.Actor{}, errs.E(errs.Unauthenticated, "log in first: send the header Authorization: Bearer <token>")
}
