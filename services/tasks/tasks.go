// Package tasks is the task tracker context (R-TASK-1…8): tasks with exactly one assignee,
// drawn at random from the assignable popugs of its account replica; the shuffle that
// reassigns every open task; completion by the assignee; and the task events accounting and
// analytics are built from.
package tasks

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// Producer is the producer name on the task tracker's events.
const Producer = "tasks"

// Status is a task's status.
type Status string

// The statuses of R-TASK-2.
const (
	Open Status = "OPEN"
	Done Status = "DONE"
)

// Task is a task as the rest of aTES sees it.
type Task struct {
	ID          uuid.UUID
	Title       string
	JiraID      *string
	Description string
	Status      Status
	AssigneeID  uuid.UUID
	CreatedAt   time.Time
	CompletedAt *time.Time
}

// Rand is the random source of assignments: IntN returns a uniform integer in [0, n).
type Rand interface {
	IntN(n int) int
}

// LockedRand makes a Rand safe for concurrent use.
type LockedRand struct {
	mu sync.Mutex
	r  Rand
}

// NewLockedRand wraps r; with nil it uses a randomly seeded PCG.
func NewLockedRand(r Rand) *LockedRand {
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return &LockedRand{r: r}
}

// IntN returns a uniform integer in [0, n).
func (l *LockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// Config holds the service's dependencies; all but DB, Notify and ShuffleBatch are required.
type Config struct {
	Client *tasksdb.Client
	// DB is the connection pool under Client; with it, Create on PostgreSQL runs its statement
	// prepared (parsed and planned once per connection, not once per task).
	DB      *sql.DB
	Dialect string
	Outbox  *outbox.Writer
	Clock   func() time.Time
	Rand    Rand
	Logger  *slog.Logger
	// Notify is called after a commit that stored events (wakes the outbox relay).
	Notify func()
	// ShuffleBatch is how many tasks a shuffle reassigns per statement (default 5 000).
	ShuffleBatch int
}

// Service implements the task tracker's use cases.
type Service struct {
	client  *tasksdb.Client
	dialect string
	outbox  *outbox.Writer
	now     func() time.Time
	rand    Rand
	log     *slog.Logger
	notify  func()
	batch   int
	db      *sql.DB
	// pools is the snapshot of assignable popugs Create draws from on PostgreSQL.
	pools pools
	// stmts are the service's own statements prepared on db (*sql.Stmt by their text; see
	// prepared); stmtsMu serializes their preparation.
	stmtsMu sync.Mutex
	stmts   sync.Map
}

// New returns the service; it refuses a missing dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Client == nil || cfg.Outbox == nil || cfg.Clock == nil || cfg.Rand == nil || cfg.Logger == nil {
		return nil, errors.New("tasks: New needs a client, an outbox writer, a clock, a random source and a logger")
	}
	if cfg.Dialect != dialect.SQLite && cfg.Dialect != dialect.Postgres {
		return nil, errors.New("tasks: New needs the database dialect (sqlite3 or postgres)")
	}
	clock := cfg.Clock
	s := &Service{
		// Times are kept to the microsecond, the precision PostgreSQL stores: what a use case
		// returns, what is stored and what its events carry are then the same instant.
		client: cfg.Client, db: cfg.DB, dialect: cfg.Dialect, outbox: cfg.Outbox,
		now:  func() time.Time { return clock().UTC().Truncate(time.Microsecond) },
		rand: cfg.Rand, log: cfg.Logger, notify: cfg.Notify, batch: cfg.ShuffleBatch,
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	if s.batch <= 0 {
		s.batch = 5000
	}
	return s, nil
}

func (s *Service) inTx(ctx context.Context, fn func(tx *tasksdb.Tx) error) error {
	return storage.InTx(ctx, s.client.Tx, fn)
}

func toTask(t *tasksdb.Task) Task {
	out := Task{
		ID: t.PublicID, Title: t.Title, JiraID: t.JiraID, Description: t.Description,
		Status: Status(t.Status), AssigneeID: t.AssigneeID, CreatedAt: t.CreatedAt.UTC(),
	}
	if t.CompletedAt != nil {
		c := t.CompletedAt.UTC()
		out.CompletedAt = &c
	}
	return out
}

// sql adapts a query written with PostgreSQL's $n placeholders to the database's dialect
// (SQLite numbers them ?n).
func (s *Service) sql(q string) string { return storage.Rebind(s.dialect, q) }
