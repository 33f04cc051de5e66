package accounting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/ids"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
)

// ConsumerName is accounting's name in its inbox and dead-letter store.
const ConsumerName = "accounting"

// Topics are the events accounting consumes. Not task.updated: a task's title, Jira id and
// description never change after task.created, which carries them, so for accounting a
// task.updated (sent with every completion) only repeats them — half of what its queue got
// at completion time. Apply still applies one that comes (a broker that kept an older binding,
// a re-driven dead letter), as before.
var Topics = []string{
	contract.AccountCreated, contract.AccountUpdated,
	contract.TaskCreated, contract.TaskAssigned, contract.TaskCompleted,
}

// Apply applies a consumed event in the consumer's transaction (R-ACC-2, R-ACC-4). The inbox
// guarantees one application per event id; the entry's unique source event id guards again.
// Events may come in any order: whichever event first names a task prices it, and whichever
// first names an account opens its billing account.
func (s *Service) Apply(ctx context.Context, tx *accountingdb.Tx, e event.Envelope) error {
	switch e.Name {
	case contract.AccountCreated, contract.AccountUpdated:
		var d contract.Account
		if err := e.DecodeData(&d); err != nil {
			return inbox.Permanent(err)
		}
		return s.applyAccount(ctx, tx, d)
	case contract.TaskCreated:
		d, err := contract.DecodeTaskCreated(e)
		if err != nil {
			return inbox.Permanent(err)
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return err
		}
		return s.describeTask(ctx, tx, id, d.Title, d.JiraID, d.Description, e.Time)
	case contract.TaskUpdated:
		var d contract.TaskUpdatedV1
		if err := e.DecodeData(&d); err != nil {
			return inbox.Permanent(err)
		}
		id, err := parseUUID("taskId", d.TaskID)
		if err != nil {
			return err
		}
		return s.describeTask(ctx, tx, id, d.Title, d.JiraID, d.Description, e.Time)
	case contract.TaskAssigned:
		var d contract.TaskAssignedV1
		if err := e.DecodeData(&d); err != nil {
			return inbox.Permanent(err)
		}
		return s.applyTaskMoney(ctx, tx, e.ID, d.TaskID, d.AssigneeID, Fee, d.AssignedAt)
	case contract.TaskCompleted:
		var d contract.TaskCompletedV1
		if err := e.DecodeData(&d); err != nil {
			return inbox.Permanent(err)
		}
		return s.applyTaskMoney(ctx, tx, e.ID, d.TaskID, d.AssigneeID, Reward, d.CompletedAt)
	default:
		return nil
	}
}

func parseUUID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, inbox.Permanent(fmt.Errorf("accounting: %s %q: %w", field, s, err))
	}
	return id, nil
}

// applyAccount keeps the replica current by version; the balance is never touched here.
func (s *Service) applyAccount(ctx context.Context, tx *accountingdb.Tx, d contract.Account) error {
	id, err := parseUUID("accountId", d.AccountID)
	if err != nil {
		return err
	}
	if _, err := identity.ParseRole(d.Role); err != nil {
		return inbox.Permanent(err)
	}
	_, err = tx.ExecContext(ctx, s.sql(`INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8)
		ON CONFLICT (public_id) DO UPDATE SET username = excluded.username, email = excluded.email,
			full_name = excluded.full_name, role = excluded.role, active = excluded.active, version = excluded.version
		WHERE accounts.version < excluded.version`),
		id.String(), d.Username, d.Email, d.FullName, d.Role, d.Active, d.Version, s.now().UTC())
	if err != nil {
		return fmt.Errorf("accounting: updating account %s: %w", id, err)
	}
	return nil
}

// ensureAccount opens a billing account for an account accounting has not heard of yet.
func (s *Service) ensureAccount(ctx context.Context, tx *accountingdb.Tx, id uuid.UUID) error {
	_, err := tx.ExecContext(ctx, s.sql(`INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, created_at)
		VALUES ($1, '', '', '', '', true, 0, 0, $2) ON CONFLICT (public_id) DO NOTHING`), id.String(), s.now().UTC())
	if err != nil {
		return fmt.Errorf("accounting: opening billing account %s: %w", id, err)
	}
	return nil
}

// pricedTask is a task's price and how its entries describe it.
type pricedTask struct {
	Price
	label string
}

// ensureTask returns the task's price, drawing and publishing it when accounting hears of the
// task for the first time (R-ACC-1).
func (s *Service) ensureTask(ctx context.Context, tx *accountingdb.Tx, id uuid.UUID) (pricedTask, error) {
	p := drawPrice(s.rand)
	now := s.now().UTC()
	res, err := tx.ExecContext(ctx, s.sql(`INSERT INTO tasks (public_id, fee, reward, priced_at, title, description, described)
		VALUES ($1, $2, $3, $4, '', '', false) ON CONFLICT (public_id) DO NOTHING`),
		id.String(), int64(p.Fee), int64(p.Reward), now)
	if err != nil {
		return pricedTask{}, fmt.Errorf("accounting: pricing task %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return pricedTask{}, fmt.Errorf("accounting: pricing task %s: %w", id, err)
	} else if n == 1 {
		e, err := event.New(ctx, Producer, contract.TaskPriced, 1, now, contract.TaskPricedV1{
			TaskID: id.String(), Fee: int64(p.Fee), Reward: int64(p.Reward), PricedAt: now,
		})
		if err != nil {
			return pricedTask{}, err
		}
		if err := s.outbox.Append(ctx, tx, outbox.Record{Key: id.String(), Envelope: e}); err != nil {
			return pricedTask{}, err
		}
	}
	var (
		fee, reward int64
		title       string
		jira        sql.NullString
		described   bool
	)
	rows, err := tx.QueryContext(ctx, s.sql(`SELECT fee, reward, title, jira_id, described FROM tasks WHERE public_id = $1`), id.String())
	if err != nil {
		return pricedTask{}, fmt.Errorf("accounting: reading task %s: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return pricedTask{}, errors.Join(fmt.Errorf("accounting: task %s vanished", id), rows.Err())
	}
	if err := rows.Scan(&fee, &reward, &title, &jira, &described); err != nil {
		return pricedTask{}, fmt.Errorf("accounting: reading task %s: %w", id, err)
	}
	return pricedTask{Price: Price{Fee: money.Cents(fee), Reward: money.Cents(reward)}, label: taskLabel(id, described, title, jira)}, nil
}

func taskLabel(id uuid.UUID, described bool, title string, jira sql.NullString) string {
	if !described {
		return id.String()
	}
	var j *string
	if jira.Valid {
		j = &jira.String
	}
	return contract.TaskLabel(j, title)
}

// describeTask records a task's title, Jira id and description for the audit log; a task
// named here first is priced here.
func (s *Service) describeTask(ctx context.Context, tx *accountingdb.Tx, id uuid.UUID, title string, jira *string, description string, _ time.Time) error {
	if _, err := s.ensureTask(ctx, tx, id); err != nil {
		return err
	}
	// A description already stored is not written again (see pgDescribeTasks).
	_, err := tx.ExecContext(ctx, s.sql(`UPDATE tasks SET title = $1, jira_id = $2, description = $3, described = true
WHERE public_id = $4 AND (NOT described OR title <> $1 OR jira_id IS DISTINCT FROM $2 OR description <> $3)`),
		title, jira, description, id.String())
	if err != nil {
		return fmt.Errorf("accounting: describing task %s: %w", id, err)
	}
	return nil
}

// applyTaskMoney posts the fee of an assignment or the reward of a completion (R-ACC-2).
func (s *Service) applyTaskMoney(ctx context.Context, tx *accountingdb.Tx, eventID, taskID, accountID string, typ EntryType, at time.Time) error {
	tid, err := parseUUID("taskId", taskID)
	if err != nil {
		return err
	}
	aid, err := parseUUID("assigneeId", accountID)
	if err != nil {
		return err
	}
	t, err := s.ensureTask(ctx, tx, tid)
	if err != nil {
		return err
	}
	if err := s.ensureAccount(ctx, tx, aid); err != nil {
		return err
	}
	amount, what := -t.Fee, "Fee for task "
	if typ == Reward {
		amount, what = t.Reward, "Reward for task "
	}
	// PostgreSQL keeps microseconds (and rounds): cut the event's time to them first, so the
	// stored entry, its balance.changed event and its business day agree on one instant on
	// every database (R-ACC-7) — 23:59:59.9999996 must not be stored as the next day's 00:00.
	at = at.UTC().Truncate(time.Microsecond)
	_, err = s.post(ctx, tx, posting{
		Account: aid, Type: typ, Amount: amount, Task: &tid, Description: what + t.label,
		At: at, Day: calendar.DateOf(at, s.loc), SourceEventID: eventID,
	})
	return err
}

// posting is one entry to apply.
type posting struct {
	Account       uuid.UUID
	Type          EntryType
	Amount        money.Cents
	Task          *uuid.UUID
	Description   string
	At            time.Time
	Day           calendar.Date
	SourceEventID string
}

// post applies an entry: the balance changes by the amount (and the entry count by one) in the
// same transaction as the entry is stored with the balance after it and added to the rollups,
// so the balance always equals the sum of the entries (R-ACC-3); a balance.changed event goes
// to the outbox.
func (s *Service) post(ctx context.Context, tx *accountingdb.Tx, p posting) (Entry, error) {
	after, err := queryInt(ctx, tx, s.sql(`UPDATE accounts SET balance = balance + $1, entry_count = entry_count + 1 WHERE public_id = $2 RETURNING balance`),
		int64(p.Amount), p.Account.String())
	if err != nil {
		return Entry{}, fmt.Errorf("accounting: posting to %s: %w", p.Account, err)
	}
	e := Entry{
		ID: ids.New(), AccountID: p.Account, Type: p.Type, Amount: p.Amount, BalanceAfter: money.Cents(after),
		TaskID: p.Task, Description: p.Description, OccurredAt: p.At.UTC(), Day: p.Day,
	}
	var task any
	if p.Task != nil {
		task = p.Task.String()
	}
	// The entry's row id grows with every entry of the account: the account row is locked by
	// the balance update above until this transaction ends.
	seq, err := queryInt(ctx, tx, s.sql(`INSERT INTO entries (public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`),
		e.ID.String(), e.AccountID.String(), string(e.Type), int64(e.Amount), after, task, e.OccurredAt, e.Day.String(), p.SourceEventID)
	if err != nil {
		return Entry{}, fmt.Errorf("accounting: storing entry: %w", err)
	}
	if err := s.rollUp(ctx, tx, []dayEntry{{account: e.AccountID, day: e.Day.String(), typ: e.Type, amount: int64(e.Amount)}}); err != nil {
		return Entry{}, err
	}
	rec, err := balanceChanged(ctx, e, seq)
	if err != nil {
		return Entry{}, err
	}
	return e, s.outbox.Append(ctx, tx, rec)
}

// balanceChanged is the balance.changed event of an applied entry, seq its ledger sequence
// (R-ACC-10).
func balanceChanged(ctx context.Context, e Entry, seq int64) (outbox.Record, error) {
	var taskID *string
	if e.TaskID != nil {
		t := e.TaskID.String()
		taskID = &t
	}
	ev, err := event.New(ctx, Producer, contract.BalanceChanged, 1, e.OccurredAt, contract.BalanceChangedV1{
		EntryID: e.ID.String(), Sequence: seq, AccountID: e.AccountID.String(), Type: string(e.Type), Amount: int64(e.Amount),
		BalanceAfter: int64(e.BalanceAfter), TaskID: taskID, Description: e.Description, OccurredAt: e.OccurredAt, Day: e.Day.String(),
	})
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Key: e.AccountID.String(), Envelope: ev}, nil
}

// queryInt runs a statement returning one integer (e.g. RETURNING id) in tx.
func queryInt(ctx context.Context, tx *accountingdb.Tx, q string, args ...any) (int64, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, sql.ErrNoRows
	}
	var v int64
	if err := rows.Scan(&v); err != nil {
		return 0, err
	}
	return v, rows.Close()
}
