// Command ates runs aTES.
//
//	ates                      everything in one process (the embedded default, R-OPS-1)
//	ates gateway              the GraphQL gateway only
//	ates worker [context…]    outbox relays and event consumers of the named contexts (default all)
//	ates deadletters list     dead letters of every context
//	ates deadletters redrive  re-process dead letters of a context
//	ates analytics rebuild    rebuild analytics' read models from the producers' event history
//	ates admin reset-password USERNAME
//	                          set a new generated password for an account (a lost admin password)
//
// Configuration comes from ATES_* environment variables (see README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/web"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ates:", err)
		os.Exit(1)
	}
}

// run executes one command line; it returns when the command is done or a signal stops it.
func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, err := LoadConfig(environ)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd := "all"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "all", "gateway", "worker":
	case "deadletters":
		return runDeadLetters(ctx, cfg, log, args, stdout)
	case "analytics":
		return runAnalytics(ctx, cfg, log, args, stdout)
	case "admin":
		return runAdmin(ctx, cfg, log, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: ates [all | gateway | worker [context…] | deadletters list|redrive … | analytics rebuild | admin reset-password USERNAME]")
		return nil
	default:
		return fmt.Errorf("unknown command %q (want all, gateway, worker, deadletters, analytics or admin)", cmd)
	}

	// The listen address is taken before anything is created: a busy port must not cost the
	// one-time admin password printed below.
	var ln net.Listener
	if cmd != "worker" {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listening on %s (ATES_HTTP_ADDR): %w", cfg.HTTPAddr, err)
		}
		defer ln.Close()
	}
	if cfg.usesDataDir() {
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer unlock()
	}

	a, err := openApp(ctx, cfg, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	defer a.close()

	var workers []string
	switch cmd {
	case "all":
		workers = Contexts
	case "worker":
		workers = args
		if len(workers) == 0 {
			workers = Contexts
		}
		for _, w := range workers {
			if !slices.Contains(Contexts, w) {
				return fmt.Errorf("unknown context %q (want one of %v)", w, Contexts)
			}
		}
	}

	var wg sync.WaitGroup
	errc := make(chan error, 2)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(workers) > 0 {
		wg.Go(func() { errc <- a.runWorkers(runCtx, workers) })
	}
	if cmd != "worker" {
		if err := a.bootstrapAdmin(ctx, stdout); err != nil {
			return err
		}
		wg.Go(func() { errc <- a.runGateway(runCtx, stdout, ln) })
	}
	err = <-errc
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("stopped")
	return err
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// bootstrapAdmin creates the first admin on an empty auth database and prints its
// credentials once (R-AUTH-3).
func (a *app) bootstrapAdmin(ctx context.Context, stdout io.Writer) error {
	created, password, err := a.auth.Bootstrap(ctx, a.cfg.AdminUsername, a.cfg.AdminPassword)
	if err != nil {
		return err
	}
	if !created {
		if a.cfg.AdminPassword != "" {
			a.log.Warn("ATES_ADMIN_PASSWORD is set but ignored: the auth database has accounts already (to set an account's password, run: ates admin reset-password USERNAME)")
		}
		return nil
	}
	username := a.cfg.AdminUsername
	if username == "" {
		username = "admin"
	}
	if a.cfg.AdminPassword == "" {
		fmt.Fprintf(stdout, "\nBootstrap admin created. Username: %s  Password: %s\n(printed once; change it by creating your own admin)\n\n", username, password)
	} else {
		fmt.Fprintf(stdout, "Bootstrap admin %q created with the password from ATES_ADMIN_PASSWORD.\n", username)
	}
	a.log.Warn("bootstrap admin created", "username", username)
	return nil
}

// runGateway serves GraphQL until ctx is done, then shuts down gracefully (R-OPS-5).
func (a *app) runGateway(ctx context.Context, stdout io.Writer, ln net.Listener) error {
	keys, err := a.auth.PublicKeys(ctx)
	if err != nil {
		return err
	}
	revocations := auth.NewRevocations()
	hub := graph.NewHub(a.log.With("component", "hub"))
	// The gateway's feeds keep their queues across broker outages, named for this process
	// (R-REL-1). When a feed's queue had to be created anew, what was published meanwhile may be
	// lost: the revocation set is read again from the auth database, and every live
	// subscription of the feed ends with RESYNC so its client refetches. Neither waits for the
	// other feeds' consumers.
	instance := newInstanceID()
	a.log.Info("gateway feeds", "instance", instance)
	onAccountFeedGap := func() {
		go func() {
			if err := a.auth.SeedRevocations(context.WithoutCancel(ctx), revocations); err != nil {
				a.log.Error("gateway: reading revocations again after a gap in the account feed", "error", err)
			}
		}()
	}
	onBalanceFeedGap := func() { hub.ResyncBalances("the balance feed's queue was created anew") }
	onBoardFeedGap := func() { hub.ResyncTasks("the task feed's queue was created anew") }
	// Subscribe before seeding, so no change between the two is missed.
	feed, err := a.transport.Subscribe(ctx, bus.Subscription{
		Topics: auth.RevocationTopics, Concurrency: 1,
		Feed: gatewayFeed(instance, "accounts"), OnGap: onAccountFeedGap,
	}, func(_ context.Context, d bus.Delivery) error {
		e, err := a.registry.Parse(d.Body)
		if err != nil {
			a.log.Error("gateway: invalid account event dropped from the token feed", "error", err)
			return nil // the feed is a cache; the contexts' inboxes keep dead letters
		}
		return revocations.ApplyEvent(e)
	})
	if err != nil {
		return fmt.Errorf("subscribing to account events: %w", err)
	}
	defer feed.Stop()
	// Live balance pushes (R-ACC-10): every gateway has its own feed of balance changes, so a
	// subscriber gets its pushes whichever gateway holds its socket.
	lookup, closeLookup, err := openTaskLookup(ctx, a.cfg.storageConfig())
	if err != nil {
		return err
	}
	defer func() {
		if err := closeLookup(); err != nil {
			a.log.Warn("closing the balance feed's tasks database", "error", err)
		}
	}()
	// The feed takes its queue in batches, acknowledged at once: at high rates the broker's work
	// per message, not the hub's, bounds how fast pushes go out.
	balances, err := a.transport.SubscribeBatch(ctx, bus.Subscription{
		Topics: []string{contract.BalanceChanged}, Batch: 200,
		Feed: gatewayFeed(instance, "balances"), OnGap: onBalanceFeedGap,
	}, func(ctx context.Context, ds []bus.Delivery) error {
		es := make([]event.Envelope, 0, len(ds))
		var bad []error
		for _, d := range ds {
			e, err := a.registry.Parse(d.Body)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			es = append(es, e)
		}
		// The batch's tasks are looked up once, not once per push, on the feed's own pool.
		if err := errors.Join(append(bad, graph.PublishBalanceChanges(ctx, hub, lookup, es))...); err != nil {
			// Redelivering would not mend it; the contexts' inboxes keep dead letters.
			a.log.Error("gateway: invalid balance events dropped from the live feed", "error", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("subscribing to balance events: %w", err)
	}
	defer balances.Stop()
	// The live task board (R-LIVE-1), fed the same way from the task tracker's events.
	boardChanges, err := a.transport.SubscribeBatch(ctx, bus.Subscription{
		Topics: []string{contract.TaskAssigned, contract.TaskCompleted}, Batch: 200,
		Feed: gatewayFeed(instance, "tasks"), OnGap: onBoardFeedGap,
	}, func(ctx context.Context, ds []bus.Delivery) error {
		es := make([]event.Envelope, 0, len(ds))
		var bad []error
		for _, d := range ds {
			e, err := a.registry.Parse(d.Body)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			es = append(es, e)
		}
		if err := errors.Join(append(bad, graph.PublishTaskChanges(ctx, hub, lookup, es))...); err != nil {
			a.log.Error("gateway: invalid task events dropped from the live board", "error", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("subscribing to task events: %w", err)
	}
	defer boardChanges.Stop()
	if err := a.auth.SeedRevocations(ctx, revocations); err != nil {
		return err
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: revocations, Clock: time.Now, MaxLifetime: a.auth.TokenTTL(), Lookup: a.auth.LookupAccount})
	if err != nil {
		return err
	}
	jwks, err := auth.JWKS(keys)
	if err != nil {
		return err
	}
	trusted, err := graph.ParseTrustedProxies(a.cfg.TrustedProxies)
	if err != nil {
		return err
	}
	h, err := graph.NewHandler(graph.Config{
		Resolver: &graph.Resolver{
			Auth: a.auth, TaskTracker: a.tasks, Accounting: a.accounting, Analytics: a.analytics, Hub: hub, Log: a.log,
			Location: a.cfg.Location(), Clock: time.Now,
		},
		Verifier:       verifier,
		JWKS:           func(context.Context) ([]byte, error) { return jwks, nil },
		Ready:          a.ready(),
		Logger:         a.log,
		Dev:            a.cfg.Dev,
		AllowedOrigins: a.cfg.AllowedOrigins,
		TrustedProxies: trusted,
		// R-SEC-8: with a listener of its own, /metrics is not on the public one.
		MetricsElsewhere: a.cfg.MetricsAddr != "",
		Context:          ctx,
		WebApp:           web.Handler(),
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:    a.cfg.HTTPAddr,
		Handler: withCorrelation(h),
		// Headers within 10 s; the body has its own deadline in the handler (R-SEC-2). A
		// response is written within the operation timeout (30 s) plus this margin; a WebSocket
		// leaves both deadlines behind when it is upgraded.
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{srv}
	listeners := []net.Listener{ln}
	if a.cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", a.cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listening on %s for metrics: %w", a.cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.Handler())
		if a.cfg.Pprof {
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		}
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute})
		listeners = append(listeners, mln)
		a.log.Info("metrics listening", "addr", mln.Addr().String())
	}
	base := "http://" + displayAddr(ln.Addr())
	fmt.Fprintf(stdout, "aTES is up: GraphQL %s/graphql  GraphiQL %s/graphiql\n", base, base)
	a.log.Info("gateway listening", "addr", ln.Addr().String())

	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() { errc <- s.Serve(listeners[i]) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutting down HTTP: %w", err)
		}
	}
	return ctx.Err()
}

// runWorkers runs the outbox relays and event consumers of the contexts until ctx is done.
func (a *app) runWorkers(ctx context.Context, contexts []string) error {
	var wg sync.WaitGroup
	for _, name := range contexts {
		r := a.relays[name]
		wg.Go(func() {
			if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("outbox relay stopped", "context", name, "error", err)
			}
		})
	}
	for _, name := range contexts {
		c, ok := a.consumers[name]
		if !ok {
			continue
		}
		h := c.BatchHandler()
		if w, ok := a.outboxes[name]; ok { // analytics stores no events
			h = notifyAfter(h, w.Taken, a.relays[name].Notify)
		}
		// Not cancelled with ctx: on shutdown Stop lets running handlers finish.
		consumer, err := a.transport.SubscribeBatch(context.WithoutCancel(ctx), consumerSubscription(name), h)
		if err != nil {
			return fmt.Errorf("subscribing the %s consumer: %w", name, err)
		}
		// Graceful: running handlers finish and acknowledge; the rest is redelivered (R-OPS-5).
		defer consumer.Stop()
	}
	if slices.Contains(contexts, "accounting") {
		wg.Go(func() {
			if err := a.runEndOfDay(ctx); err != nil {
				a.log.Error("end of day stopped", "error", err)
			}
		})
	}
	a.log.Info("workers running", "contexts", contexts)
	<-ctx.Done()
	wg.Wait()
	return ctx.Err()
}

// Consumers take their queue in batches (R-EVT-5): each of consumerWorkers workers applies up
// to consumerBatch events in one transaction, acknowledged together. A batch is whatever the
// queue holds when a worker is free, so a quiet queue still hands events over one at a time.
const (
	consumerWorkers = 4
	consumerBatch   = 200
)

// readModelLinger is how long an analytics batch waits for more events (RabbitMQ).
const readModelLinger = 50 * time.Millisecond

// consumerSubscription is the subscription of a context's consumer. Analytics' read models are
// on nobody's latency path (admins look at them), so its consumer has one worker that lets a
// batch gather events for readModelLinger: at a thousand completions a second it applies them
// in batches of a hundred or more, each a few set-based statements, instead of many small
// batches whose workers wait on each other's row locks — CPU the ledger and the live pushes
// get instead (R-ACC-10). The other contexts' consumers take what is queued at once.
func consumerSubscription(context string) bus.Subscription {
	q := topologyQueue(context)
	s := bus.Subscription{Queue: q.Name, Topics: q.Topics, Concurrency: consumerWorkers, Batch: consumerBatch}
	if context == "analytics" {
		s.Concurrency, s.Linger = 1, readModelLinger
	}
	return s
}

// notifyAfter wakes a context's outbox relay after its consumer handled a batch that may have
// stored events (taken, the context's outbox.Writer.Taken, moved): applying events may append
// events to the context's outbox (accounting: balance.changed, task.priced), which would
// otherwise wait for the relay's next poll — the live balance push (R-ACC-10) with it. A batch
// that stored none (a replica update, an event delivered again; every analytics batch) wakes
// nobody: the relay would only find its outbox empty.
func notifyAfter(h bus.BatchHandler, taken func() uint64, notify func()) bus.BatchHandler {
	return func(ctx context.Context, d []bus.Delivery) error {
		before := taken()
		err := h(ctx, d)
		if err == nil && taken() != before {
			notify()
		}
		return err
	}
}

// withCorrelation gives every request a correlation id (X-Request-Id, or a new one) that the
// events it causes carry (R-EVT-1).
func withCorrelation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 128 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(event.WithCorrelationID(r.Context(), id)))
	})
}

func displayAddr(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", tcp.Port)
		}
	}
	return addr.String()
}
