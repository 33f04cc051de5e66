package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/bus/rabbitmq"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/tasks"
)

// Contexts are the bounded contexts, each with its own database.
var Contexts = []string{"auth", "tasks", "accounting", "analytics"}

// topology is every durable queue and its bindings, declared by every process at start so no
// event is published before its queue exists.
func topology() []bus.Queue {
	return []bus.Queue{
		{Name: queueName("tasks"), Topics: tasks.Topics},
		{Name: queueName("accounting"), Topics: accounting.Topics},
		{Name: queueName("analytics"), Topics: analytics.Topics},
	}
}

// queueName is a consuming context's durable queue.
func queueName(context string) string { return "ates." + context }

// app is aTES wired together: databases, transport, outboxes and the contexts' services.
type app struct {
	cfg       Config
	log       *slog.Logger
	registry  *event.Registry
	transport bus.Transport
	dbs       map[string]*storage.DB
	relays    map[string]*outbox.Relay
	// outboxes are the contexts' outbox writers, by context; analytics has none.
	outboxes map[string]*outbox.Writer

	authClient *authdb.Client
	auth       *auth.Service
	tasks      *tasks.Service
	accounting *accounting.Service
	analytics  *analytics.Service
	// consumers are the contexts' event consumers, by context.
	consumers map[string]contextConsumer
}

// contextConsumer is a context's event consumer: its queue subscription and its dead letters.
type contextConsumer interface {
	redriver
	Handler() bus.Handler
	BatchHandler() bus.BatchHandler
}

// openApp opens every context database (migrating its schema), the transport and the services.
func openApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: log, dbs: map[string]*storage.DB{}, relays: map[string]*outbox.Relay{},
		outboxes: map[string]*outbox.Writer{}}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.registry, err = event.DefaultRegistry(); err != nil {
		return nil, err
	}
	scfg := cfg.storageConfig()
	for _, name := range Contexts {
		db, err := storage.Open(ctx, scfg, name)
		if err != nil {
			return nil, fmt.Errorf("%s database: %w", name, err)
		}
		a.dbs[name] = db
		if err := migrate(ctx, name, db); err != nil {
			return nil, err
		}
		log.Info("database ready", "context", name, "dialect", db.Dialect, "database", db.Name)
	}
	if a.transport, err = openTransport(ctx, cfg, log); err != nil {
		return nil, err
	}
	if err := a.transport.Declare(ctx, topology()...); err != nil {
		return nil, fmt.Errorf("declaring queues: %w", err)
	}
	for _, name := range Contexts {
		r, err := outbox.NewRelay(a.dbs[name], a.transport, outbox.RelayOptions{Context: name, Logger: log})
		if err != nil {
			return nil, err
		}
		a.relays[name] = r
	}
	writer := func(name string) (*outbox.Writer, error) {
		w, err := outbox.NewWriter(a.dbs[name].Dialect, a.registry)
		if err == nil {
			a.outboxes[name] = w
		}
		return w, err
	}

	a.authClient = authdb.NewClient(authdb.Driver(a.dbs["auth"].Driver()))
	authOutbox, err := writer("auth")
	if err != nil {
		return nil, err
	}
	if a.auth, err = auth.New(ctx, auth.Config{
		Client: a.authClient, Outbox: authOutbox, Clock: time.Now, Logger: log.With("context", "auth"),
		Notify: a.relays["auth"].Notify, TokenTTL: cfg.TokenTTL, SessionTTL: cfg.SessionTTL,
		MaxConcurrentHashes: cfg.PasswordHashes,
	}); err != nil {
		return nil, err
	}
	tasksOutbox, err := writer("tasks")
	if err != nil {
		return nil, err
	}
	tasksDB := a.dbs["tasks"]
	tasksClient := tasksdb.NewClient(tasksdb.Driver(tasksDB.Driver()))
	if a.tasks, err = tasks.New(tasks.Config{
		Client: tasksClient, DB: tasksDB.SQL, Dialect: tasksDB.Dialect, Outbox: tasksOutbox, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Logger: log.With("context", "tasks"), Notify: a.relays["tasks"].Notify,
	}); err != nil {
		return nil, err
	}
	tasksConsumer, err := inbox.New(inbox.Config[*tasksdb.Tx]{
		Name: tasks.ConsumerName, Dialect: tasksDB.Dialect, DB: tasksDB.SQL, Begin: tasksClient.Tx,
		Registry: a.registry, Handle: a.tasks.Apply, Logger: log.With("context", "tasks"),
	})
	if err != nil {
		return nil, err
	}
	accOutbox, err := writer("accounting")
	if err != nil {
		return nil, err
	}
	accDB := a.dbs["accounting"]
	accClient := accountingdb.NewClient(accountingdb.Driver(accDB.Driver()))
	if a.accounting, err = accounting.New(accounting.Config{
		Client: accClient, DB: accDB.SQL, Dialect: accDB.Dialect, Outbox: accOutbox, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Location: cfg.Location(), Logger: log.With("context", "accounting"),
		Notify: a.relays["accounting"].Notify,
	}); err != nil {
		return nil, err
	}
	accConsumer, err := inbox.New(inbox.Config[*accountingdb.Tx]{
		Name: accounting.ConsumerName, Dialect: accDB.Dialect, DB: accDB.SQL, Begin: accClient.Tx,
		Registry: a.registry, Handle: a.accounting.Apply, HandleBatch: a.accounting.ApplyBatch,
		Logger: log.With("context", "accounting"),
	})
	if err != nil {
		return nil, err
	}
	anDB := a.dbs["analytics"]
	anClient := analyticsdb.NewClient(analyticsdb.Driver(anDB.Driver()))
	if a.analytics, err = analytics.New(analytics.Config{
		Client: anClient, Dialect: anDB.Dialect, Clock: time.Now, Location: cfg.Location(),
		Logger: log.With("context", "analytics"),
	}); err != nil {
		return nil, err
	}
	anConsumer, err := inbox.New(inbox.Config[*analyticsdb.Tx]{
		Name: analytics.ConsumerName, Dialect: anDB.Dialect, DB: anDB.SQL, Begin: anClient.Tx,
		Registry: a.registry, Handle: a.analytics.Apply, HandleBatch: a.analytics.ApplyBatch, Logger: log.With("context", "analytics"),
	})
	if err != nil {
		return nil, err
	}
	a.consumers = map[string]contextConsumer{"tasks": tasksConsumer, "accounting": accConsumer, "analytics": anConsumer}
	return a, nil
}

// migrate creates or upgrades a context's tables with Ent's automatic migration and the
// context's own steps, then the outbox's (every context's database holds an outbox table).
func migrate(ctx context.Context, name string, db *storage.DB) error {
	err := db.Migrate(ctx, func(ctx context.Context) error {
		var err error
		switch name {
		case "auth":
			err = auth.Migrate(ctx, db)
		case "tasks":
			err = tasks.Migrate(ctx, db)
		case "accounting":
			err = accounting.Migrate(ctx, db)
		case "analytics":
			err = analyticsdb.NewClient(analyticsdb.Driver(db.Driver())).Schema.Create(ctx)
		default:
			return errors.New("unknown context")
		}
		if err != nil {
			return err
		}
		return outbox.Migrate(ctx, db)
	})
	if err != nil {
		return fmt.Errorf("migrating the %s database: %w", name, err)
	}
	return nil
}

// openTransport returns RabbitMQ when ATES_AMQP_URL is set, else the in-process bus.
func openTransport(ctx context.Context, cfg Config, log *slog.Logger) (bus.Transport, error) {
	if cfg.AMQPURL == "" {
		log.Info("event transport: in-process")
		return inproc.New(), nil
	}
	t, err := rabbitmq.New(ctx, rabbitmq.Config{
		URL: cfg.AMQPURL, Exchange: cfg.AMQPExchange, QueuePrefix: queuePrefix(cfg.AMQPExchange),
		BatchSize: cfg.AMQPBatchSize, Logger: log.With("component", "rabbitmq"),
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to RabbitMQ: %w", err)
	}
	log.Info("event transport: RabbitMQ", "exchange", cfg.AMQPExchange, "batch_size", cfg.AMQPBatchSize, "queues", queuePrefix(cfg.AMQPExchange)+queueName("*"))
	return t, nil
}

// queuePrefix keeps apart the durable queues of aTES stacks that share a vhost with different
// exchanges (ATES_AMQP_EXCHANGE): with the default exchange the queues are ates.tasks and
// ates.accounting; with exchange X they are X.ates.tasks and X.ates.accounting. Without it a
// second stack's queue ates.accounting would be bound to both exchanges and its worker would
// consume the other stack's events.
func queuePrefix(exchange string) string {
	if exchange == "" || exchange == rabbitmq.DefaultExchange {
		return ""
	}
	return exchange + "."
}

// ready returns the readiness checks of /readyz: every context database answers.
func (a *app) ready() map[string]func(context.Context) error {
	checks := map[string]func(context.Context) error{}
	for name, db := range a.dbs {
		checks["database:"+name] = db.SQL.PingContext
	}
	return checks
}

func (a *app) close() {
	if a.transport != nil {
		if err := a.transport.Close(); err != nil {
			a.log.Warn("closing transport", "error", err)
		}
	}
	for _, r := range a.relays {
		r.Close() // stops announcing commits to other processes' relays
	}
	for name, db := range a.dbs {
		if err := db.Close(); err != nil {
			a.log.Warn("closing database", "context", name, "error", err)
		}
	}
}

// feedLookupConns bounds the balance feed's own pool to the task tracker's database: the feed
// handles one batch at a time, one lookup each.
const feedLookupConns = 2

// openTaskLookup opens, for the gateway's balance feed, a pool of its own to the task tracker's
// database and a tasks.Lookup on it; closeDB closes the pool. On the pool requests use, a
// backlog of requests holds every connection and the feed's lookup of a batch's tasks — every
// push of the batch behind it — waits its turn among them. With a pool of its own, push latency
// under such a backlog stays near what it is without one (figures in docs/benchmarks.md).
func openTaskLookup(ctx context.Context, cfg storage.Config) (_ *tasks.Lookup, closeDB func() error, _ error) {
	db, err := storage.Open(ctx, cfg, "tasks")
	if err != nil {
		return nil, nil, fmt.Errorf("tasks database of the balance feed: %w", err)
	}
	db.SQL.SetMaxOpenConns(feedLookupConns)
	db.SQL.SetMaxIdleConns(feedLookupConns)
	return tasks.NewLookup(tasksdb.NewClient(tasksdb.Driver(db.Driver()))), db.Close, nil
}

// redrivers are the contexts' event consumers that can re-process dead letters, by context.
func (a *app) redrivers() map[string]redriver {
	m := map[string]redriver{}
	for name, c := range a.consumers {
		m[name] = c
	}
	return m
}

// topologyQueue returns a context's durable queue from the topology.
func topologyQueue(context string) bus.Queue {
	for _, q := range topology() {
		if q.Name == queueName(context) {
			return q
		}
	}
	return bus.Queue{}
}
