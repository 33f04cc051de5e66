package graph

import (
	"context"
	"net/http"
	"strings"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// TokenVerifier turns an access token into the acting account (auth.Verifier).
type TokenVerifier interface {
	Verify(token string) (identity.Actor, error)
}

type authErrKey struct{}

// authenticate verifies a "Bearer <token>" credential into ctx: the actor when valid, the
// reason when not. A missing credential leaves the request anonymous.
func authenticate(ctx context.Context, v TokenVerifier, header string) context.Context {
	if header == "" {
		return ctx
	}
	// The scheme is case-insensitive (RFC 7235 §2.1): "bearer <token>" is accepted too.
	scheme, tok, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return context.WithValue(ctx, authErrKey{}, errs.E(errs.Unauthenticated, "the Authorization header must be \"Bearer <token>\""))
	}
	a, err := v.Verify(strings.TrimSpace(tok))
	if err != nil {
		return context.WithValue(ctx, authErrKey{}, err)
	}
	return identity.WithActor(ctx, a)
}

// authMiddleware authenticates HTTP requests from the Authorization header (R-API-2).
func authMiddleware(v TokenVerifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(authenticate(r.Context(), v, r.Header.Get("Authorization"))))
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
