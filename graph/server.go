package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/uberpopug/ates/graph/generated"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/security"
)

// Limits are the cost limits of R-API-6 and R-SEC-2. Zero values take the defaults.
type Limits struct {
	// BodyBytes bounds a request body (default 1 MiB).
	BodyBytes int64
	// BodyTimeout bounds how long reading a request's body may take (default 10 s): a client
	// that stalls mid-body cannot hold its connection open.
	BodyTimeout time.Duration
	// Depth bounds field nesting (default 12); it is Document.Depth when that is unset.
	Depth int
	// Document bounds what a document may ask for, checked before it is validated
	// (DefaultDocumentLimits).
	Document DocumentLimits
	// Complexity bounds the query cost (default 3000): one per field, a list's elements times
	// what each selects (first, or the days of a range), more for resolvers that hash a beak
	// print or write in bulk (complexity.go).
	Complexity int
	// ResponseBytes bounds the data of one response (default 4 MiB); a larger one is replaced by
	// an error.
	ResponseBytes int
	// Errors bounds the errors one response lists (default 20); the rest are counted in a last
	// one.
	Errors int
	// Timeout bounds a query or mutation (default 30 s), over HTTP and WebSocket; subscriptions
	// live on. Its work is cancelled when the client leaves.
	Timeout time.Duration
	// InitTimeout is how long a WebSocket may wait before its connection_init (default 10 s).
	InitTimeout time.Duration
	// AuthRecheck is how often a WebSocket with running operations checks its token again
	// (default 1 s): a subscription ends within that time of its right ending (R-SEC-1).
	AuthRecheck time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.BodyBytes <= 0 {
		l.BodyBytes = 1 << 20
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = 10 * time.Second
	}
	if l.Document.Depth <= 0 {
		l.Document.Depth = l.Depth
	}
	l.Document = l.Document.withDefaults()
	l.Depth = l.Document.Depth
	if l.Complexity <= 0 {
		l.Complexity = 3000
	}
	if l.ResponseBytes <= 0 {
		l.ResponseBytes = 4 << 20
	}
	if l.Errors <= 0 {
		l.Errors = 20
	}
	if l.InitTimeout <= 0 {
		l.InitTimeout = 10 * time.Second
	}
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Second
	}
	if l.AuthRecheck <= 0 {
		l.AuthRecheck = time.Second
	}
	return l
}

// Config holds what the gateway's HTTP handler needs.
type Config struct {
	Resolver *Resolver
	Verifier TokenVerifier
	// JWKS returns the JSON Web Key Set served at /.well-known/jwks.json.
	JWKS func(ctx context.Context) ([]byte, error)
	// Ready checks dependencies for /readyz, by name.
	Ready  map[string]func(ctx context.Context) error
	Logger *slog.Logger
	// Dev allows introspection for everyone and schema suggestions in errors (ATES_DEV,
	// R-API-3, R-SEC-4).
	Dev bool
	// AllowedOrigins are host patterns (path.Match syntax) of the pages that may call the
	// gateway from another origin: WebSockets and CORS (ATES_ALLOWED_ORIGINS). Same origin is
	// always allowed; nothing else is.
	AllowedOrigins []string
	// TrustedProxies are the networks whose X-Forwarded-For names the client (ATES_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// MetricsElsewhere leaves /metrics out: it is served on a listener of its own
	// (ATES_METRICS_ADDR, R-SEC-8).
	MetricsElsewhere bool
	Limits           Limits
	// Context, when done, closes the open WebSockets (the gateway is shutting down).
	Context context.Context
	// WebApp, when set, serves the web app at / (client routes included) and /graphiql (R-WEB-1).
	WebApp http.Handler
}

// NewHandler returns the gateway's HTTP handler: /graphql (GET, POST and WebSocket), /graphiql,
// /.well-known/jwks.json, /healthz, /readyz and (unless MetricsElsewhere) /metrics.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Resolver == nil || cfg.Verifier == nil || cfg.JWKS == nil || cfg.Logger == nil {
		return nil, errors.New("graph: NewHandler needs a resolver, a verifier, a JWKS source and a logger")
	}
	lim := cfg.Limits.withDefaults()
	log := cfg.Logger
	g := gate{verifier: cfg.Verifier, log: log}

	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: cfg.Resolver, Complexity: complexity()}))
	srv.AddTransport(newWSTransport(cfg, lim, g))
	srv.AddTransport(httpTransport{})
	cache := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(cache)
	srv.SetParserTokenLimit(lim.Document.Tokens)
	srv.SetDisableSuggestion(!cfg.Dev)
	srv.Use(documentGuard{limits: lim.Document, cache: cache, refused: func(ctx context.Context, err error) {
		security.Record(ctx, log, security.LimitExceeded, "document refused by a cost limit", "reason", err.Error(), "client", ClientFrom(ctx))
	}})
	srv.Use(introspectionPolicy{dev: cfg.Dev})
	srv.Use(extension.FixedComplexityLimit(lim.Complexity))
	srv.AroundResponses(capResponses(lim, log))
	srv.AroundResponses(cfg.Resolver.withLoaders())
	srv.SetErrorPresenter(presentError(log, cfg.Dev))
	srv.SetRecoverFunc(recoverPanic(log))

	mux := http.NewServeMux()
	mux.Handle("/graphql", g.middleware(withExchange(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if browserNavigation(r) {
			http.Redirect(w, r, "/graphiql", http.StatusFound) // a person opened the endpoint itself
			return
		}
		srv.ServeHTTP(w, r)
	}))))
	if cfg.WebApp != nil {
		mux.Handle("GET /graphiql", cfg.WebApp)
		mux.Handle("/", cfg.WebApp)
	} else {
		mux.Handle("GET /graphiql", playground.Handler("aTES GraphiQL", "/graphql"))
	}
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := cfg.JWKS(r.Context())
		if err != nil {
			log.ErrorContext(r.Context(), "serving JWKS", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		status, code := map[string]string{}, http.StatusOK
		for name, check := range cfg.Ready {
			if err := check(ctx); err != nil {
				status[name], code = "unavailable", http.StatusServiceUnavailable
				log.WarnContext(ctx, "readiness check failed", "check", name, "error", err)
				continue
			}
			status[name] = "ok"
		}
		writeJSON(w, code, status)
	})
	if !cfg.MetricsElsewhere {
		mux.Handle("GET /metrics", promhttp.Handler())
	}
	return instrument(withClient(cfg.TrustedProxies, cors(cfg.AllowedOrigins, limitRequests(lim, mux)))), nil
}

// capResponses bounds what one response carries (R-SEC-2): data larger than ResponseBytes is
// replaced by an error, and errors beyond Errors are counted in a last one instead of listed.
func capResponses(lim Limits, log *slog.Logger) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if resp == nil {
			return nil
		}
		if n := len(resp.Errors); n > lim.Errors {
			resp.Errors = append(resp.Errors[:lim.Errors:lim.Errors], &gqlerror.Error{
				Message:    fmt.Sprintf("and %d more errors", n-lim.Errors),
				Extensions: map[string]any{"code": string(errs.Invalid)},
			})
		}
		if len(resp.Data) > lim.ResponseBytes {
			security.Record(ctx, log, security.LimitExceeded, "response refused by the size limit", "bytes", len(resp.Data), "client", ClientFrom(ctx))
			resp.Data = nil
			resp.Errors = gqlerror.List{{
				Message:    fmt.Sprintf("the response would be larger than %d bytes; ask for fewer fields or smaller pages", lim.ResponseBytes),
				Extensions: map[string]any{"code": string(errs.Invalid)},
			}}
		}
		return resp
	}
}

// limitRequests bounds request bodies — their size and how long reading them may take — and
// the duration of non-WebSocket requests (R-API-6, R-SEC-2).
func limitRequests(lim Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upgrade := r.Header.Get("Upgrade") != ""
		if !upgrade {
			// A stalled body fails its read at the deadline; the request's own timeout below
			// bounds the rest. (The server resets the deadline for the connection's next request.)
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(lim.BodyTimeout))
		}
		if r.ContentLength > lim.BodyBytes {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(bodyLimitError(lim.BodyBytes)))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, lim.BodyBytes)
		if r.ContentLength < 0 {
			// A body of undeclared length (chunked) is read here, so that an oversized one is
			// refused with 413 as well, not with whatever the transport answers to a read error.
			b, err := io.ReadAll(r.Body)
			var tooLarge *http.MaxBytesError
			switch {
			case errors.As(err, &tooLarge):
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_, _ = w.Write([]byte(bodyLimitError(lim.BodyBytes)))
				return
			case err != nil:
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"errors":[{"message":"the request body could not be read","extensions":{"code":"BAD_USER_INPUT"}}]}`))
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}
		if !upgrade {
			ctx, cancel := context.WithTimeout(r.Context(), lim.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ates_http_requests_total", Help: "HTTP requests by path and status code.",
	}, []string{"path", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ates_http_request_duration_seconds", Help: "HTTP request duration by path.",
		Buckets: prometheus.DefBuckets,
	}, []string{"path"})
)

// instrument counts requests and their durations (R-OPS-4).
func instrument(next http.Handler) http.Handler {
	known := map[string]bool{"/graphql": true, "/graphiql": true, "/.well-known/jwks.json": true, "/healthz": true, "/readyz": true, "/metrics": true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if !known[path] {
			path = "other"
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		httpRequests.WithLabelValues(path, strconv.Itoa(sw.code)).Inc()
		httpDuration.WithLabelValues(path).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController (and WebSocket hijacking) reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// cors lets the pages of the allowed origins call /graphql from another origin (CORS), with
// credentials; any other cross-origin page gets no CORS headers, so its browser keeps the
// answers from it. Authentication is a bearer header, never an ambient cookie: a cross-origin
// request the browser sends without asking (a GET, a form) runs anonymously (docs/security.md).
func cors(allowed []string, next http.Handler) http.Handler {
	listed := sameOriginOr(allowed)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
			next.ServeHTTP(w, r) // same origin
			return
		}
		if !listed(r) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
