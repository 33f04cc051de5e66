// Package accounting is the accounting context (R-ACC-1…10): task prices drawn once, an
// immutable ledger per popug with the balance kept equal to the sum of its entries, the audit
// log, company earnings per day, and the balance-changed events live pushes are made from.
package accounting

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// Producer is the producer name on accounting's events.
const Producer = "accounting"

// Rand is the random source of prices: IntN returns a uniform integer in [0, n).
type Rand interface {
	IntN(n int) int
}

// Config holds the service's dependencies; all but Notify are required.
type Config struct {
	Client *accountingdb.Client
	// DB is the pool under Client, for the close's advisory locks.
	DB      *sql.DB
	Dialect string
	Outbox  *outbox.Writer
	Clock   func() time.Time
	Rand    Rand
	// Location is the business-day timezone (ATES_TIMEZONE, R-ACC-7).
	Location *time.Location
	Logger   *slog.Logger
	// Notify is called after a commit that stored events (wakes the outbox relay).
	Notify func()
}

// Service implements accounting's use cases.
type Service struct {
	client  *accountingdb.Client
	db      *sql.DB
	dialect string
	outbox  *outbox.Writer
	now     func() time.Time
	rand    Rand
	loc     *time.Location
	log     *slog.Logger
	notify  func()
	// closeBatch is how many accounts one payout transaction of the close pays.
	closeBatch int
	// closeWorkers is how many payout batches of one close run at once on PostgreSQL.
	closeWorkers int
	// afterCloseBatch, when set (tests), runs after each committed payout batch; an error
	// stops the close there, as a crash would.
	afterCloseBatch func(batch int) error
}

// New returns the service; it refuses a missing dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Client == nil || cfg.DB == nil || cfg.Outbox == nil || cfg.Clock == nil || cfg.Rand == nil || cfg.Location == nil || cfg.Logger == nil {
		return nil, errors.New("accounting: New needs a client, its database, an outbox writer, a clock, a random source, a location and a logger")
	}
	if cfg.Dialect != dialect.SQLite && cfg.Dialect != dialect.Postgres {
		return nil, errors.New("accounting: New needs the database dialect (sqlite3 or postgres)")
	}
	s := &Service{
		client: cfg.Client, db: cfg.DB, dialect: cfg.Dialect, outbox: cfg.Outbox, now: cfg.Clock,
		rand: cfg.Rand, loc: cfg.Location, log: cfg.Logger, notify: cfg.Notify, closeBatch: closeBatch,
		closeWorkers: closeWorkers,
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	return s, nil
}

// EntryType is the kind of a ledger entry (R-ACC-3).
type EntryType string

// The entry types.
const (
	Fee    EntryType = "FEE"
	Reward EntryType = "REWARD"
	Payout EntryType = "PAYOUT"
)

// Entry is one immutable ledger line.
type Entry struct {
	ID           uuid.UUID
	AccountID    uuid.UUID
	Type         EntryType
	Amount       money.Cents
	BalanceAfter money.Cents
	TaskID       *uuid.UUID
	Description  string
	OccurredAt   time.Time
	Day          calendar.Date
}

// today is the current business day.
func (s *Service) today() calendar.Date { return calendar.DateOf(s.now(), s.loc) }

func (s *Service) inTx(ctx context.Context, fn func(tx *accountingdb.Tx) error) error {
	return storage.InTx(ctx, s.client.Tx, fn)
}

// sql adapts a query written with PostgreSQL's $n placeholders to the dialect (SQLite: ?n).
func (s *Service) sql(q string) string { return storage.Rebind(s.dialect, q) }
