package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// Clock is a time source the test moves by hand; the service and the verifier share it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Gateway is the real HTTP handler over real services, each on its own real database.
type Gateway struct {
	URL string
	// Handler is the gateway's HTTP handler itself, for requests served in-process.
	Handler     http.Handler
	DB          *storage.DB
	Auth        *auth.Service
	Revocations *auth.Revocations
	Clock       *Clock
	Logs        *syncBuffer
	// AuthQueries records every query the auth service sends to DB outside a transaction.
	AuthQueries *QueryLog
	// Hub feeds the gateway's balanceChanged subscriptions.
	Hub *graph.Hub
	// TasksDB is the task tracker's database; Tasks the task tracker on it, drawing from a PCG
	// with a fixed seed, on Clock.
	TasksDB     *storage.DB
	TasksClient *tasksdb.Client
	Tasks       *tasks.Service
	// TasksQueries records the queries the task tracker sends outside transactions.
	TasksQueries *QueryLog
	// AccountingDB is accounting's database and Accounting the service on it (prices, R-LIVE-2);
	// AccountingQueries records the queries it sends outside transactions.
	AccountingDB      *storage.DB
	AccountingClient  *accountingdb.Client
	Accounting        *accounting.Service
	AccountingQueries *QueryLog
	// AdminToken and AdminID belong to the bootstrap admin "root".
	AdminToken string
	AdminID    string

	// What a second gateway over the same contexts needs.
	resolver *graph.Resolver
	keys     []auth.PublicKey
	jwks     []byte
	log      *slog.Logger
}

// SecondGateway serves another gateway over the same contexts and databases, with a
// revocation set of its own (fed by its own FeedEvents), as a second `ates gateway` would.
func (g *Gateway) SecondGateway(tb testing.TB) *Gateway {
	tb.Helper()
	ctx := context.Background()
	revocations := auth.NewRevocationsWithClock(g.Clock.Now)
	if err := g.Auth.SeedRevocations(ctx, revocations); err != nil {
		tb.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Keys: g.keys, Revocations: revocations, Clock: g.Clock.Now, Lookup: g.Auth.LookupAccount})
	if err != nil {
		tb.Fatal(err)
	}
	h, err := graph.NewHandler(graph.Config{
		Resolver: g.resolver, Verifier: verifier, Logger: g.log,
		JWKS: func(context.Context) ([]byte, error) { return g.jwks, nil },
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	second := *g
	second.URL, second.Handler, second.Revocations = srv.URL, h, revocations
	return &second
}

type gatewayConfig struct {
	dialect string
	dev     bool
	limits  graph.Limits
	ctx     context.Context
	ready   func(db *storage.DB) map[string]func(context.Context) error
	origins []string
	metrics bool // served elsewhere
}

// GatewayOption adjusts MustGateway.
type GatewayOption func(*gatewayConfig)

// eachDialect runs body on SQLite and on PostgreSQL, in parallel subtests; on is the option
// that puts a gateway on the subtest's database.
func eachDialect(t *testing.T, body func(t *testing.T, on GatewayOption)) {
	t.Helper()
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			body(t, OnDialect(d))
		})
	}
}

// OnDialect runs the gateway on a database of the dialect (default SQLite).
func OnDialect(d string) GatewayOption { return func(c *gatewayConfig) { c.dialect = d } }

// DevMode turns on ATES_DEV (introspection for everyone).
func DevMode() GatewayOption { return func(c *gatewayConfig) { c.dev = true } }

// WithLimits sets the cost limits.
func WithLimits(l graph.Limits) GatewayOption { return func(c *gatewayConfig) { c.limits = l } }

// WithContext gives the gateway a context whose end closes its WebSockets.
func WithContext(ctx context.Context) GatewayOption { return func(c *gatewayConfig) { c.ctx = ctx } }

// WithOrigins sets ATES_ALLOWED_ORIGINS.
func WithOrigins(patterns ...string) GatewayOption {
	return func(c *gatewayConfig) { c.origins = patterns }
}

// WithMetricsElsewhere sets ATES_METRICS_ADDR: /metrics is not on the gateway's handler.
func WithMetricsElsewhere() GatewayOption { return func(c *gatewayConfig) { c.metrics = true } }

// WithReady replaces the readiness checks.
func WithReady(f func(db *storage.DB) map[string]func(context.Context) error) GatewayOption {
	return func(c *gatewayConfig) { c.ready = f }
}

// start is the fake clock's first instant.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

var schemaMu sync.Mutex

// QueryLog is the list of queries a database driver ran, safe for concurrent use.
type QueryLog struct {
	mu      sync.Mutex
	queries []string
}

func (l *QueryLog) add(q string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queries = append(l.queries, q)
}

// Since returns the queries logged after the first n.
func (l *QueryLog) Since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.queries[min(n, len(l.queries)):]...)
}

// Len is how many queries were logged.
func (l *QueryLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queries)
}

// loggingDriver is Ent's SQL driver over the real database, logging the queries (SELECTs) it
// runs outside transactions; everything else, transactions included, passes through.
type loggingDriver struct {
	*entsql.Driver
	log *QueryLog
}

// Query logs the query and runs it.
func (d loggingDriver) Query(ctx context.Context, query string, args, v any) error {
	d.log.add(query)
	return d.Driver.Query(ctx, query, args, v)
}

// mustMigrate runs Ent's migration, one at a time: it writes the generated package-level
// table list.
func mustMigrate(tb testing.TB, name string, create func(context.Context) error) {
	tb.Helper()
	schemaMu.Lock()
	err := create(context.Background())
	schemaMu.Unlock()
	if err != nil {
		tb.Fatalf("creating the %s schema: %v", name, err)
	}
}

// MustGateway serves graph.NewHandler on an httptest server, over a fresh database holding a
// bootstrap admin, as cmd/ates wires it: verifier and JWKS from the auth service's keys.
func MustGateway(tb testing.TB, opts ...GatewayOption) *Gateway {
	tb.Helper()
	cfg := gatewayConfig{dialect: dialect.SQLite, ready: func(db *storage.DB) map[string]func(context.Context) error {
		return map[string]func(context.Context) error{"auth-db": db.SQL.PingContext}
	}}
	for _, o := range opts {
		o(&cfg)
	}
	ctx := context.Background()
	db := storagetest.MustOpen(tb, cfg.dialect)
	authQueries := &QueryLog{}
	client := authdb.NewClient(authdb.Driver(loggingDriver{Driver: db.Driver(), log: authQueries}))
	mustMigrate(tb, "auth", func(ctx context.Context) error { return client.Schema.Create(ctx) })
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clock := &Clock{now: start}
	svc, err := auth.New(ctx, auth.Config{
		Client: client, Outbox: w, Clock: clock.Now, Logger: log,
		Argon2: auth.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(ctx, "root", "root-beak-print"); err != nil {
		tb.Fatal(err)
	}
	admin, err := svc.Login(ctx, "root", "root-beak-print", "")
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := svc.PublicKeys(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	revocations := auth.NewRevocationsWithClock(clock.Now)
	if err := svc.SeedRevocations(ctx, revocations); err != nil {
		tb.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: revocations, Clock: clock.Now, Lookup: svc.LookupAccount})
	if err != nil {
		tb.Fatal(err)
	}
	jwks, err := auth.JWKS(keys)
	if err != nil {
		tb.Fatal(err)
	}

	// The task tracker, on a database of its own (R-OPS-2), with its account replica.
	tasksDB := storagetest.MustOpen(tb, cfg.dialect)
	tasksQueries := &QueryLog{}
	tasksClient := tasksdb.NewClient(tasksdb.Driver(loggingDriver{Driver: tasksDB.Driver(), log: tasksQueries}))
	mustMigrate(tb, "tasks", func(ctx context.Context) error { return tasksClient.Schema.Create(ctx) })
	tasksOutbox, err := outbox.NewWriter(tasksDB.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	tracker, err := tasks.New(tasks.Config{
		Client: tasksClient, Dialect: tasksDB.Dialect, Outbox: tasksOutbox, Clock: clock.Now,
		Rand: tasks.NewLockedRand(rand.New(rand.NewPCG(7, 77))), Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}

	// Accounting, on a database of its own, for the prices tasks show.
	accDB := storagetest.MustOpen(tb, cfg.dialect)
	accQueries := &QueryLog{}
	accClient := accountingdb.NewClient(accountingdb.Driver(loggingDriver{Driver: accDB.Driver(), log: accQueries}))
	mustMigrate(tb, "accounting", func(ctx context.Context) error { return accounting.Migrate(ctx, accDB) })
	accOutbox, err := outbox.NewWriter(accDB.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	acc, err := accounting.New(accounting.Config{
		Client: accClient, DB: accDB.SQL, Dialect: accDB.Dialect, Outbox: accOutbox, Clock: clock.Now,
		Rand: tasks.NewLockedRand(rand.New(rand.NewPCG(8, 88))), Location: time.UTC, Logger: log,
	})
	if err != nil {
		tb.Fatal(err)
	}

	hub := graph.NewHub(log)
	resolver := &graph.Resolver{Auth: svc, TaskTracker: tracker, Accounting: acc, Hub: hub, Log: log, Clock: clock.Now, Location: time.UTC}
	h, err := graph.NewHandler(graph.Config{
		Resolver: resolver,
		Verifier: verifier,
		JWKS:     func(context.Context) ([]byte, error) { return jwks, nil },
		Ready:    cfg.ready(db),
		Logger:   log,
		Dev:      cfg.dev,
		Limits:   cfg.limits,
		Context:  cfg.ctx,

		AllowedOrigins:   cfg.origins,
		MetricsElsewhere: cfg.metrics,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	g := &Gateway{
		URL: srv.URL, Handler: h, DB: db, Auth: svc, Revocations: revocations, Clock: clock, Logs: logs,
		AuthQueries: authQueries, Hub: hub, TasksDB: tasksDB, TasksClient: tasksClient, Tasks: tracker, TasksQueries: tasksQueries,
		AccountingDB: accDB, AccountingClient: accClient, Accounting: acc, AccountingQueries: accQueries,
		AdminToken: admin.Token, AdminID: admin.Account.ID.String(),
		resolver: resolver, keys: keys, jwks: jwks, log: log,
	}
	g.SyncReplica(tb)
	return g
}

// GQLError is one entry of a GraphQL response's errors.
type GQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Response is a GraphQL response with its HTTP status and raw body.
type Response struct {
	Status int
	Body   string
	Data   json.RawMessage `json:"data"`
	Errors []GQLError      `json:"errors"`
}

// Post sends a GraphQL request with the Authorization header when auth is not "".
func (g *Gateway) Post(tb testing.TB, authHeader, query string, vars map[string]any) Response {
	tb.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, g.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authHeader != "" {
		req.Header.Set("Authorization", authHeader)
	}
	return mustDo(tb, req)
}

// Query sends a GraphQL request as the token's bearer ("" = anonymous).
func (g *Gateway) Query(tb testing.TB, token, query string, vars map[string]any) Response {
	tb.Helper()
	h := ""
	if token != "" {
		h = "Bearer " + token
	}
	return g.Post(tb, h, query, vars)
}

func mustDo(tb testing.TB, req *http.Request) Response {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := Response{Status: resp.StatusCode, Body: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		tb.Fatalf("response %d is not JSON: %v\n%s", resp.StatusCode, err, raw)
	}
	return r
}

// MustOK fails unless the response has no errors, and decodes its data into v (when not nil).
func (r Response) MustOK(tb testing.TB, v any) {
	tb.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		tb.Fatalf("want success, got HTTP %d: %s", r.Status, r.Body)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data, v); err != nil {
			tb.Fatalf("decoding data: %v\n%s", err, r.Body)
		}
	}
}

// MustError fails unless the response carries errors, all with extensions.code == code, and
// no data besides nulls; it returns the first error.
func (r Response) MustError(tb testing.TB, code string) GQLError {
	tb.Helper()
	if len(r.Errors) == 0 {
		tb.Fatalf("want a %s error, got: %s", code, r.Body)
	}
	for _, e := range r.Errors {
		if got, _ := e.Extensions["code"].(string); got != code {
			tb.Fatalf("want code %s, got %q: %s", code, got, r.Body)
		}
		if e.Message == "" {
			tb.Fatalf("error without a message: %s", r.Body)
		}
	}
	if d := strings.TrimSpace(string(r.Data)); d != "" && d != "null" {
		var fields map[string]any
		if err := json.Unmarshal(r.Data, &fields); err != nil {
			tb.Fatal(err)
		}
		for k, v := range fields {
			if v != nil {
				tb.Fatalf("an error response carries data %s = %v: %s", k, v, r.Body)
			}
		}
	}
	return r.Errors[0]
}

// MustFieldError is MustError for BAD_USER_INPUT naming field in extensions.field.
func (r Response) MustFieldError(tb testing.TB, field string) GQLError {
	tb.Helper()
	e := r.MustError(tb, "BAD_USER_INPUT")
	if got, _ := e.Extensions["field"].(string); got != field {
		tb.Fatalf("want extensions.field %q, got %q: %s", field, got, r.Body)
	}
	return e
}

// User is an account made for a test, with a token.
type User struct {
	ID, Username, Password, Token string
	Role                          identity.Role
}

// MustUser creates an account of the role through the auth service (as the admin) and logs in.
func (g *Gateway) MustUser(tb testing.TB, username string, role identity.Role) User {
	tb.Helper()
	ctx := context.Background()
	admin := g.adminActor(tb)
	pw := "beak-" + username
	a, err := g.Auth.CreateAccount(ctx, admin, auth.NewAccount{
		Username: username, Password: pw, FullName: "Popug " + username, Email: username + "@uberpopug.com", Role: role,
	})
	if err != nil {
		tb.Fatal(err)
	}
	g.Revocations.Observe(a.ID, auth.AccountState{Version: a.Version, Active: a.Active}) // as the gateway's account feed would
	s, err := g.Auth.Login(ctx, username, pw, "")
	if err != nil {
		tb.Fatal(err)
	}
	return User{ID: a.ID.String(), Username: username, Password: pw, Token: s.Token, Role: role}
}

func (g *Gateway) adminActor(tb testing.TB) identity.Actor {
	tb.Helper()
	s, err := g.Auth.Login(context.Background(), "root", "root-beak-print", "")
	if err != nil {
		tb.Fatal(err)
	}
	return identity.Actor{AccountID: s.Account.ID, Role: identity.Admin}
}

// FeedEvents applies every stored account event to the gateway's revocations, as the
// gateway's event feed does once the outbox relay has published them (R-AUTH-5).
func (g *Gateway) FeedEvents(tb testing.TB) {
	tb.Helper()
	rows, err := g.DB.SQL.Query(`SELECT payload FROM outbox_events ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			tb.Fatal(err)
		}
		e, err := event.MustDefaultRegistry().Parse([]byte(payload))
		if err != nil {
			tb.Fatal(err)
		}
		if err := g.Revocations.ApplyEvent(e); err != nil {
			tb.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
}

// SyncReplica applies every account event auth has stored to the task tracker's replica, in one
// transaction, as the tasks consumer does once the relay has published them (R-AUTH-6). Events
// already applied are ignored by version, so it may run any number of times.
func (g *Gateway) SyncReplica(tb testing.TB) {
	tb.Helper()
	rows, err := g.DB.SQL.Query(`SELECT payload FROM outbox_events ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	var envs []event.Envelope
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			tb.Fatal(err)
		}
		e, err := event.MustDefaultRegistry().Parse([]byte(payload))
		if err != nil {
			tb.Fatal(err)
		}
		envs = append(envs, e)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := rows.Close(); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	err = storage.InTx(ctx, g.TasksClient.Tx, func(tx *tasksdb.Tx) error {
		for _, e := range envs {
			if err := g.Tasks.Apply(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("applying account events to the tasks replica: %v", err)
	}
}

// TaskEvents returns the task tracker's stored events, oldest first, as the relay publishes them.
func (g *Gateway) TaskEvents(tb testing.TB) []event.Envelope {
	tb.Helper()
	rows, err := g.TasksDB.SQL.Query(`SELECT payload FROM outbox_events ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var envs []event.Envelope
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			tb.Fatal(err)
		}
		e, err := event.MustDefaultRegistry().Parse([]byte(payload))
		if err != nil {
			tb.Fatal(err)
		}
		envs = append(envs, e)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return envs
}

// PriceTasks applies the task tracker's stored events to accounting, as its consumer does once
// the relay has published them: every task gets its price (R-ACC-1). Run it once per test.
func (g *Gateway) PriceTasks(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	err := storage.InTx(ctx, g.AccountingClient.Tx, func(tx *accountingdb.Tx) error {
		for _, e := range g.TaskEvents(tb) {
			if err := g.Accounting.Apply(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("applying task events to accounting: %v", err)
	}
}

// Get fetches a path of the gateway.
func (g *Gateway) Get(tb testing.TB, path string) (*http.Response, string) {
	tb.Helper()
	resp, err := http.Get(g.URL + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(raw)
}
