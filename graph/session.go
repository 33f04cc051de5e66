package graph

import (
	"context"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
)

// RefreshCookie is the cookie that keeps a browser signed in (R-SESS-1): the refresh token,
// HttpOnly (no script reads it), SameSite=Strict and scoped to /graphql (no other site's page
// and no other path sends it), Secure unless the gateway is served over plain HTTP on
// localhost. Only refreshSession reads it, and only from a POST with a JSON body — a request a
// browser makes cross-origin only after a preflight — so no other request can use the session
// without the access token (docs/security.md).
const RefreshCookie = "ates_refresh"

type exchangeKey struct{}

// exchange is the HTTP request a GraphQL operation came in, and its response, for the
// resolvers that set or read the refresh cookie. A WebSocket operation has none.
type exchange struct {
	w http.ResponseWriter
	r *http.Request
}

// withExchange gives the request's operations its exchange; a WebSocket's operations have none
// (its upgrade request's response is taken over by the socket).
func withExchange(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWebSocketUpgrade(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, &exchange{w: w, r: r})))
	})
}

// setRefreshCookie sets the session's refresh token as the response's cookie. Mutations run
// one after another, and the response is written after them, so the header is still open.
func setRefreshCookie(ctx context.Context, s auth.Session) {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok || s.RefreshToken == "" {
		return // over a WebSocket: no cookie; the client keeps its access token only
	}
	http.SetCookie(x.w, &http.Cookie{
		Name: RefreshCookie, Value: s.RefreshToken, Path: "/graphql",
		Expires: s.RefreshExpiresAt, MaxAge: max(int(time.Until(s.RefreshExpiresAt).Seconds()), 1),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookies(x.r),
	})
}

// clearRefreshCookie tells the browser to drop the refresh cookie.
func clearRefreshCookie(ctx context.Context) {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok {
		return
	}
	http.SetCookie(x.w, &http.Cookie{
		Name: RefreshCookie, Value: "", Path: "/graphql", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookies(x.r),
	})
}

// refreshToken reads the refresh cookie of a POST with a JSON body (R-SESS-1).
func refreshToken(ctx context.Context) (string, error) {
	x, ok := ctx.Value(exchangeKey{}).(*exchange)
	if !ok {
		return "", errs.E(errs.Unauthenticated, "refreshSession needs the refresh cookie: send it as an HTTP POST, not over a WebSocket")
	}
	if mt, _, err := mime.ParseMediaType(x.r.Header.Get("Content-Type")); x.r.Method != http.MethodPost || err != nil || mt != "application/json" {
		return "", errs.E(errs.Unauthenticated, "refreshSession must be a POST with Content-Type: application/json")
	}
	c, err := x.r.Cookie(RefreshCookie)
	if err != nil || c.Value == "" {
		return "", errs.E(errs.Unauthenticated, "no session to refresh: log in")
	}
	return c.Value, nil
}

// secureCookies reports whether cookies must be Secure: always but over plain HTTP on this
// very machine (localhost or a loopback address), where browsers accept a Secure cookie only
// from localhost and a person runs `make run`.
func secureCookies(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
