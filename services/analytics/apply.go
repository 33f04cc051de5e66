package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
)

// ConsumerName is analytics' name in its inbox and dead-letter store.
const ConsumerName = "analytics"

// Topics are the events analytics consumes (R-AN-4). Fees and rewards come from
// balance.changed, so task.assigned is not needed; accounts matter only through their ledger
// entries, so account events are not either.
var Topics = []string{
	contract.TaskCreated, contract.TaskUpdated, contract.TaskCompleted, contract.TaskPriced,
	contract.BalanceChanged, contract.DayClosed,
}

// Apply applies a consumed event in the consumer's transaction (R-AN-4). The inbox applies an
// event id once; Apply is idempotent on its own too (upserts, running maxima, entries keyed by
// entry id), and the result does not depend on the order events arrive in, so a replay of
// several producers' histories, interleaved in any way, builds the same read models. An
// event that can never be applied (undecodable, an unknown version) is marked permanent, so the
// inbox dead-letters it.
func (s *Service) Apply(ctx context.Context, tx *analyticsdb.Tx, e event.Envelope) error {
	ops, err := decodeOps(e)
	if err != nil {
		return err
	}
	for _, o := range ops {
		if err := s.applyOp(ctx, tx, o); err != nil {
			return err
		}
		if o.kind == opComplete || o.kind == opPrice {
			if err := s.promote(ctx, tx, o.task); err != nil {
				return err
			}
		}
	}
	return nil
}

// opKind is what an op does to the read models.
type opKind int

const (
	opDescribe  opKind = iota + 1 // a task's displayable state (task.created, task.updated)
	opComplete                    // a task's completion (task.completed, task.updated DONE)
	opPrice                       // a task's reward (task.priced)
	opEntry                       // a ledger entry (balance.changed)
	opDayClosed                   // a finished close (day.closed)
)

// op is one effect of a consumed event, decoded and checked.
type op struct {
	kind opKind
	task uuid.UUID

	title       string // opDescribe
	jira        *string
	description string
	at          time.Time // opDescribe: the state's time; opComplete: the completion

	assignee *uuid.UUID // opComplete; nil from task.updated
	reward   int64      // opPrice

	entry   contract.BalanceChangedV1 // opEntry
	entryID uuid.UUID
	account uuid.UUID
	day     calendar.Date // opEntry, opDayClosed

	eventID string               // opDayClosed
	closed  contract.DayClosedV1 // opDayClosed
}

// decodeOps reads an event's effects; events analytics does not use have none. An event it
// cannot read is a permanent error.
func decodeOps(e event.Envelope) ([]op, error) {
	switch e.Name {
	case contract.TaskCreated:
		d, err := contract.DecodeTaskCreated(e)
		if err != nil {
			return nil, inbox.Permanent(err)
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return nil, err
		}
		return []op{{kind: opDescribe, task: id, title: d.Title, jira: d.JiraID, description: d.Description, at: d.CreatedAt}}, nil
	case contract.TaskUpdated:
		var d contract.TaskUpdatedV1
		if err := decode(e, &d); err != nil {
			return nil, err
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return nil, err
		}
		// The event's time is when the task reached this state (its completion).
		ops := []op{{kind: opDescribe, task: id, title: d.Title, jira: d.JiraID, description: d.Description, at: e.Time}}
		if d.Status == contract.TaskDone && d.CompletedAt != nil {
			ops = append(ops, op{kind: opComplete, task: id, at: *d.CompletedAt})
		}
		return ops, nil
	case contract.TaskCompleted:
		var d contract.TaskCompletedV1
		if err := decode(e, &d); err != nil {
			return nil, err
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return nil, err
		}
		assignee, err := parseUUID("assigneeId", d.AssigneeID)
		if err != nil {
			return nil, err
		}
		return []op{{kind: opComplete, task: id, assignee: &assignee, at: d.CompletedAt}}, nil
	case contract.TaskPriced:
		var d contract.TaskPricedV1
		if err := decode(e, &d); err != nil {
			return nil, err
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return nil, err
		}
		return []op{{kind: opPrice, task: id, reward: d.Reward}}, nil
	case contract.BalanceChanged:
		var d contract.BalanceChangedV1
		if err := decode(e, &d); err != nil {
			return nil, err
		}
		o, err := entryOp(d)
		if err != nil {
			return nil, err
		}
		return []op{o}, nil
	case contract.DayClosed:
		var d contract.DayClosedV1
		if err := decode(e, &d); err != nil {
			return nil, err
		}
		day, err := calendar.Parse(d.Day)
		if err != nil {
			return nil, inbox.Permanent(fmt.Errorf("analytics: day.closed %s: %w", e.ID, err))
		}
		return []op{{kind: opDayClosed, eventID: e.ID, day: day, closed: d}}, nil
	default:
		return nil, nil
	}
}

// entryOp checks a ledger entry (R-ACC-3).
func entryOp(d contract.BalanceChangedV1) (op, error) {
	entryID, err := parseUUID("entryId", d.EntryID)
	if err != nil {
		return op{}, err
	}
	accountID, err := parseUUID("accountId", d.AccountID)
	if err != nil {
		return op{}, err
	}
	switch d.Type {
	case contract.EntryFee, contract.EntryReward, contract.EntryPayout:
	default:
		return op{}, inbox.Permanent(fmt.Errorf("analytics: entry %s has unknown type %q", entryID, d.Type))
	}
	day, err := calendar.Parse(d.Day)
	if err != nil {
		return op{}, inbox.Permanent(fmt.Errorf("analytics: entry %s: %w", entryID, err))
	}
	if d.Sequence < 1 {
		return op{}, inbox.Permanent(fmt.Errorf("analytics: entry %s carries no ledger sequence", entryID))
	}
	return op{kind: opEntry, entry: d, entryID: entryID, account: accountID, day: day}, nil
}

// applyOp applies one effect; a completion or a pricing still needs its promote.
func (s *Service) applyOp(ctx context.Context, tx *analyticsdb.Tx, o op) error {
	switch o.kind {
	case opDescribe:
		return s.describeTask(ctx, tx, o.task, o.title, o.jira, o.description, o.at)
	case opComplete:
		return s.completeTask(ctx, tx, o.task, o.assignee, o.at)
	case opPrice:
		return s.priceTask(ctx, tx, o.task, o.reward)
	case opEntry:
		inserted, err := s.insertEntry(ctx, tx, o)
		if err != nil || !inserted {
			return err // or applied before
		}
		if err := s.moveBalance(ctx, tx, o); err != nil {
			return err
		}
		return s.moveDayBalance(ctx, tx, o)
	case opDayClosed:
		return s.applyDayClosed(ctx, tx, o)
	}
	return nil
}

// decode reads the data of a v1 event; another version is one this consumer does not know.
func decode(e event.Envelope, v any) error {
	if e.Version != 1 {
		return inbox.Permanent(fmt.Errorf("analytics: %s v%d is not a version this consumer knows", e.Name, e.Version))
	}
	if err := e.DecodeData(v); err != nil {
		return inbox.Permanent(err)
	}
	return nil
}

func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, inbox.Permanent(fmt.Errorf("analytics: %s %q: %w", field, s, err))
	}
	return id, nil
}

// describeTask records a task's displayable state as of at; an older description (a
// task.created arriving after a task.updated) never overwrites a newer one.
func (s *Service) describeTask(ctx context.Context, tx *analyticsdb.Tx, id uuid.UUID, title string, jira *string, description string, at time.Time) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO tasks (task_id, title, jira_id, description, described_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (task_id) DO UPDATE SET title = excluded.title, jira_id = excluded.jira_id,
			description = excluded.description, described_at = excluded.described_at
		WHERE tasks.described_at IS NULL OR tasks.described_at <= excluded.described_at`),
		id, title, jira, description, instant(at))
	if err != nil {
		return fmt.Errorf("analytics: describing task %s: %w", id, err)
	}
	return nil
}

// completeTask records a task's completion: its time, business day and, from task.completed,
// the popug who completed it. A task is completed once, so the first value stays. The task
// then needs its promote.
func (s *Service) completeTask(ctx context.Context, tx *analyticsdb.Tx, id uuid.UUID, assignee *uuid.UUID, at time.Time) error {
	at = instant(at)
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO tasks (task_id, title, description, completed_at, completed_day, assignee_id)
		VALUES ($1, '', '', $2, $3, $4)
		ON CONFLICT (task_id) DO UPDATE SET completed_at = COALESCE(tasks.completed_at, excluded.completed_at),
			completed_day = COALESCE(tasks.completed_day, excluded.completed_day),
			assignee_id = COALESCE(tasks.assignee_id, excluded.assignee_id)`),
		id, at, calendar.DateOf(at, s.loc).String(), assignee)
	if err != nil {
		return fmt.Errorf("analytics: completing task %s: %w", id, err)
	}
	return nil
}

// priceTask records a task's reward; prices are set once (R-ACC-1), so the first value stays.
// The task then needs its promote.
func (s *Service) priceTask(ctx context.Context, tx *analyticsdb.Tx, id uuid.UUID, reward int64) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO tasks (task_id, title, description, reward) VALUES ($1, '', '', $2)
		ON CONFLICT (task_id) DO UPDATE SET reward = COALESCE(tasks.reward, excluded.reward)`), id, reward)
	if err != nil {
		return fmt.Errorf("analytics: pricing task %s: %w", id, err)
	}
	return nil
}

// promote lets a task that is both completed and priced compete for its completion day's top:
// it replaces the day's top when it has a higher reward, or the same reward and an earlier
// completion, or both the same and a smaller id (R-AN-3). A maximum does not care in which
// order candidates come, nor how often. The task row was written (and so, on PostgreSQL,
// locked) earlier in this transaction, so a concurrent completion and pricing of one task
// cannot both miss each other.
func (s *Service) promote(ctx context.Context, tx *analyticsdb.Tx, id uuid.UUID) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO daily_tops (day, task_id, reward, completed_at)
		SELECT completed_day, task_id, reward, completed_at FROM tasks
		WHERE task_id = $1 AND reward IS NOT NULL AND completed_at IS NOT NULL
		ON CONFLICT (day) DO UPDATE SET task_id = excluded.task_id, reward = excluded.reward, completed_at = excluded.completed_at
		WHERE excluded.reward > daily_tops.reward
			OR (excluded.reward = daily_tops.reward AND (excluded.completed_at < daily_tops.completed_at
				OR (excluded.completed_at = daily_tops.completed_at AND excluded.task_id < daily_tops.task_id)))`), id)
	if err != nil {
		return fmt.Errorf("analytics: ranking task %s: %w", id, err)
	}
	return nil
}

// insertEntry records a ledger entry (R-ACC-3) once per entry id; it reports false for an
// entry recorded before, whose balances must not move again.
func (s *Service) insertEntry(ctx context.Context, tx *analyticsdb.Tx, o op) (bool, error) {
	d := o.entry
	res, err := tx.ExecContext(ctx, s.sql(`INSERT INTO ledger_entries (entry_id, account_id, type, amount, balance_after, sequence, day, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (entry_id) DO NOTHING`),
		o.entryID, o.account, d.Type, d.Amount, d.BalanceAfter, d.Sequence, o.day.String(), instant(d.OccurredAt))
	if err != nil {
		return false, fmt.Errorf("analytics: storing entry %s: %w", o.entryID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("analytics: storing entry %s: %w", o.entryID, err)
	}
	return n > 0, nil
}

// moveBalance sets the account's current balance to the entry's balance after, if the entry is
// later in ledger order (a higher sequence) than the one it shows: out-of-order arrival never
// moves it back.
func (s *Service) moveBalance(ctx context.Context, tx *analyticsdb.Tx, o op) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO accounts (account_id, sequence, balance) VALUES ($1, $2, $3)
		ON CONFLICT (account_id) DO UPDATE SET sequence = excluded.sequence, balance = excluded.balance
		WHERE excluded.sequence > accounts.sequence`), o.account, o.entry.Sequence, o.entry.BalanceAfter)
	if err != nil {
		return fmt.Errorf("analytics: updating the balance of %s: %w", o.account, err)
	}
	return nil
}

// moveDayBalance does what moveBalance does for the account's balance at the end of the
// entry's day.
func (s *Service) moveDayBalance(ctx context.Context, tx *analyticsdb.Tx, o op) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO account_days (account_id, day, sequence, balance) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id, day) DO UPDATE SET sequence = excluded.sequence, balance = excluded.balance
		WHERE excluded.sequence > account_days.sequence`), o.account, o.day.String(), o.entry.Sequence, o.entry.BalanceAfter)
	if err != nil {
		return fmt.Errorf("analytics: updating the %s balance of %s: %w", o.day, o.account, err)
	}
	return nil
}

// applyDayClosed records a finished close of a business day, once per event.
func (s *Service) applyDayClosed(ctx context.Context, tx *analyticsdb.Tx, o op) error {
	d := o.closed
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO day_closes (event_id, day, scheduled, paid_accounts, total_paid, closed_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`),
		o.eventID, o.day.String(), d.Scheduled, d.PaidAccounts, d.TotalPaid, instant(d.ClosedAt))
	if err != nil {
		return fmt.Errorf("analytics: recording the close of %s: %w", o.day, err)
	}
	return nil
}
