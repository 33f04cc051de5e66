// Package analytics is the analytics context (R-AN-1…4): management earnings and the number of
// popugs in the red per business day, and the most expensive task of a day, a week, a month or
// any range, alone or as a series. It is built only from events, in its own database (R-AN-4),
// and its read models can be rebuilt from the producers' event history (Reset, Replay).
//
// # Read models
//
//   - tasks: one row per task, filled by task.created (v1 and v2), task.updated, task.completed
//     and task.priced in whatever order they arrive. A task competes for "most expensive" once
//     it has both a reward and a completion.
//   - daily_tops: per business day, the most expensive task completed that day (a running
//     maximum: highest reward, then earliest completion, then smallest task id). The most
//     expensive task of a range is the best row of the range's days, so a query reads at most
//     one row per day, however many tasks there are.
//   - ledger_entries: every balance.changed, keyed by entry id (applying one twice is harmless);
//     a day's management earnings are −(sum of its FEE and REWARD amounts) (R-ACC-6).
//   - accounts: per account, the balanceAfter of the entry with the highest ledger sequence seen,
//     i.e. its balance now.
//   - account_days: per account and business day with entries, the balanceAfter of the
//     account's last entry of that day in ledger order: its balance at the end of that day.
//   - day_closes: the finished closes of business days (day.closed).
//
// # Negative balances at the end of a day (R-AN-2)
//
// "Now" (today) counts accounts whose current balance is negative. For a past day D it counts
// accounts whose latest account_days row at or before D has a negative balance: the balance
// after the account's last ledger entry of the latest day ≤ D on which it had entries — one
// indexed SQL query (an index seek per account). The ledger order is the sequence field of
// balance.changed: balanceAfter chains in the order accounting applied the entries, which
// neither occurredAt nor the entry id (a random UUID) gives. Because every row keeps the entry
// with the highest sequence, the result does not depend on the order events arrive in, and a
// day's PAYOUT entries (dated the day being closed, applied at its close) bring that day's
// closing balance to zero even when the close ran after the next day's first entries.
//
// Known approximation: an entry of day D applied by accounting after entries of day D+1 (an
// assignment at 23:59:59 whose event reached accounting after midnight) is D's last entry in
// ledger order, and its balanceAfter already includes those D+1 entries.
package analytics

import (
	"errors"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/storage"
)

// Config holds the service's dependencies; all are required.
type Config struct {
	Client *analyticsdb.Client
	// Dialect is the database's dialect: dialect.SQLite or dialect.Postgres.
	Dialect string
	Clock   func() time.Time
	// Location is the business-day timezone (ATES_TIMEZONE, R-ACC-7).
	Location *time.Location
	Logger   *slog.Logger
}

// Service implements analytics' queries and its event consumer.
type Service struct {
	client  *analyticsdb.Client
	dialect string
	now     func() time.Time
	loc     *time.Location
	log     *slog.Logger
}

// New returns the service; it refuses a missing dependency.
func New(cfg Config) (*Service, error) {
	if cfg.Client == nil || cfg.Clock == nil || cfg.Location == nil || cfg.Logger == nil {
		return nil, errors.New("analytics: New needs a client, a clock, a location and a logger")
	}
	if cfg.Dialect != dialect.SQLite && cfg.Dialect != dialect.Postgres {
		return nil, errors.New("analytics: New needs the database dialect (sqlite3 or postgres)")
	}
	return &Service{client: cfg.Client, dialect: cfg.Dialect, now: cfg.Clock, loc: cfg.Location, log: cfg.Logger}, nil
}

// Summary is a business day's figures for management (R-AN-2).
type Summary struct {
	Date calendar.Date
	// ManagementEarnings is −(sum of the day's FEE and REWARD entries) (R-ACC-6).
	ManagementEarnings money.Cents
	// NegativeBalanceCount is how many popugs have a negative balance: now for today, at the
	// end of the day for a past day.
	NegativeBalanceCount int
	// Closed reports that a scheduled end-of-day close of the date has finished (day.closed).
	Closed bool
}

// Period is the length of a series' buckets (R-AN-3).
type Period string

// The periods of a series: a day, an ISO week (Monday to Sunday) or a calendar month.
const (
	Day   Period = "DAY"
	Week  Period = "WEEK"
	Month Period = "MONTH"
)

// ExpensiveTask is a completed task and its reward (R-AN-3).
type ExpensiveTask struct {
	TaskID      uuid.UUID
	Title       string
	JiraID      *string
	Description string
	Reward      money.Cents
	CompletedAt time.Time
	// AssigneeID is the popug who completed the task; uuid.Nil until task.completed arrived.
	AssigneeID uuid.UUID
}

// Bucket is the most expensive task completed in [From, To], both inclusive; Top is nil when
// no priced task was completed then.
type Bucket struct {
	From, To calendar.Date
	Top      *ExpensiveTask
}

// authorize applies R-AN-1: analytics is for admins only.
func authorize(actor identity.Actor) error {
	if actor.AccountID == uuid.Nil {
		return errs.E(errs.Unauthenticated, "log in to see analytics")
	}
	if !actor.Is(identity.Admin) {
		return errs.E(errs.Forbidden, "only an admin can see analytics")
	}
	return nil
}

// today is the current business day.
func (s *Service) today() calendar.Date { return calendar.DateOf(s.now(), s.loc) }

// sql adapts a query written with PostgreSQL's $n placeholders to the dialect (SQLite: ?n).
func (s *Service) sql(q string) string { return storage.Rebind(s.dialect, q) }

// instant is how times are stored: UTC, to the microsecond PostgreSQL keeps, so both
// dialects order and compare them alike.
func instant(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
