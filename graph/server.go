package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/uberpopug/ates/graph/generated"
)

// Limits are the cost limits of R-API-6.
type Limits struct {
	// BodyBytes bounds a request body (default 1 MiB).
	BodyBytes int64
	// Depth bounds field nesting (default 12).
	Depth int
	// Complexity bounds gqlgen's query complexity (default 2000).
	Complexity int
	// Timeout bounds a query or mutation (default 30 s), over HTTP and WebSocket; subscriptions
	// live on.
	Timeout time.Duration
	// InitTimeout is how long a WebSocket may wait before its connection_init (default 10 s).
	InitTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.BodyBytes <= 0 {
		l.BodyBytes = 1 << 20
	}
	if l.Depth <= 0 {
		l.Depth = 12
	}
	if l.Complexity <= 0 {
		l.Complexity = 2000
	}
	if l.InitTimeout <= 0 {
		l.InitTimeout = 10 * time.Second
	}
	if l.Timeout <= 0 {
		l.Timeout = 30 * time.Second
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
	// Dev allows introspection for everyone (ATES_DEV, R-API-3).
	Dev bool
	// AllowedOrigins are host patterns WebSocket connections may come from (besides same origin).
	AllowedOrigins []string
	Limits         Limits
	// Context, when done, closes the open WebSockets (the gateway is shutting down).
	Context context.Context
	// WebApp, when set, serves the web app at / (client routes included) and /graphiql (R-WEB-1).
	WebApp http.Handler
}

// NewHandler returns the gateway's HTTP handler: /graphql (POST and WebSocket), /graphiql,
// /.well-known/jwks.json, /healthz, /readyz and /metrics.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Resolver == nil || cfg.Verifier == nil || cfg.JWKS == nil || cfg.Logger == nil {
		return nil, errors.New("graph: NewHandler needs a resolver, a verifier, a JWKS source and a logger")
	}
	lim := cfg.Limits.withDefaults()
	log := cfg.Logger

	srv := handler.New(generated.NewExecutableSchema(generated.Config{Resolvers: cfg.Resolver}))
	srv.AddTransport(newWSTransport(cfg, lim))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(introspectionPolicy{dev: cfg.Dev})
	srv.Use(depthLimit{max: lim.Depth})
	srv.Use(extension.FixedComplexityLimit(lim.Complexity))
	srv.AroundResponses(cfg.Resolver.withLoaders())
	srv.SetErrorPresenter(presentError(log))
	srv.SetRecoverFunc(recoverPanic(log))

	mux := http.NewServeMux()
	mux.Handle("/graphql", authMiddleware(cfg.Verifier, srv))
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
	mux.Handle("GET /metrics", promhttp.Handler())
	return instrument(limitRequests(lim, mux)), nil
}

// limitRequests bounds request bodies and the duration of non-WebSocket requests (R-API-6).
func limitRequests(lim Limits, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		if r.Header.Get("Upgrade") == "" {
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
