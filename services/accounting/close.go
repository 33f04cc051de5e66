package accounting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/accountingdb/dayclose"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
)

// closeBatch is how many accounts one payout transaction pays.
const closeBatch = 1000

// closeLockBase offsets the PostgreSQL advisory lock keys of running closes.
const closeLockBase = 0x61630000

// CloseResult is what a close paid (R-ACC-8).
type CloseResult struct {
	Day          calendar.Date
	PaidAccounts int
	TotalPaid    money.Cents
}

// runningCloses serializes runs of one close within a process (SQLite has no advisory locks).
// A close is named by its database pool and id: ids restart at 1 in every database.
var runningCloses sync.Map // closeRun → struct{}

// closeRun names a close of one database in runningCloses.
type closeRun struct {
	db *sql.DB
	id int
}

// CloseNow pays out every positive balance now, as the end-of-day close does, with the current
// business day as the payouts' day; ADMIN and ACCOUNTANT only (closeBillingDay, R-ACC-8).
func (s *Service) CloseNow(ctx context.Context, actor identity.Actor) (CloseResult, error) {
	if actor.AccountID == uuid.Nil {
		return CloseResult{}, errs.E(errs.Unauthenticated, "log in to close the billing day")
	}
	if !actor.Is(identity.Admin, identity.Accountant) {
		return CloseResult{}, errs.E(errs.Forbidden, "only an admin or an accountant can close the billing day")
	}
	day := s.today()
	c, err := s.client.DayClose.Create().SetDay(day.String()).SetStartedAt(s.now().UTC()).Save(ctx)
	if err != nil {
		return CloseResult{}, fmt.Errorf("accounting: starting a close: %w", err)
	}
	res, ran, err := s.runClose(ctx, c.ID, day, false)
	if err == nil && !ran {
		err = errs.E(errs.Conflict, "the close is already running")
	}
	return res, err
}

// CloseScheduled is the end-of-day close of a business day: every positive balance is paid out
// with the day as the payouts' day. However many processes call it, a day is closed by the
// schedule once (a unique scheduled day in the database); a close interrupted by a crash is
// resumed by the next call, and pays every positive account exactly once. It reports whether
// this call finished the close — exactly one call does, with the close's totals — (false: it
// was done, or is running or was finished elsewhere).
func (s *Service) CloseScheduled(ctx context.Context, day calendar.Date) (CloseResult, bool, error) {
	key := day.String()
	_, err := s.client.ExecContext(ctx, s.sql(`INSERT INTO day_closes (day, scheduled_day, started_at, paid_accounts, total_paid)
		VALUES ($1, $2, $3, 0, 0) ON CONFLICT (scheduled_day) DO NOTHING`), key, key, s.now().UTC())
	if err != nil {
		return CloseResult{}, false, fmt.Errorf("accounting: claiming the close of %s: %w", key, err)
	}
	c, err := s.client.DayClose.Query().Where(dayclose.ScheduledDay(key)).Only(ctx)
	if err != nil {
		return CloseResult{}, false, fmt.Errorf("accounting: loading the close of %s: %w", key, err)
	}
	if c.FinishedAt != nil {
		return CloseResult{Day: day, PaidAccounts: c.PaidAccounts, TotalPaid: money.Cents(c.TotalPaid)}, false, nil
	}
	return s.runClose(ctx, c.ID, day, true)
}

// runClose pays positive balances in batches until none is left, then finishes the close. It
// reports whether this call finished the close: exactly one call does, and its result carries
// the close's full totals. Only one run of a close at a time: a process-wide guard, and on
// PostgreSQL an advisory lock across processes; each batch also locks the close's row and
// stops once the close is finished, so a run that slips past both (another pool on one SQLite
// file, a lost lock connection) pays nobody twice and never pays into a finished close. Runs of
// different closes may overlap: each account's row lock (and SQLite's single writer) makes each
// payout see the balance the other left, so nobody is paid twice.
func (s *Service) runClose(ctx context.Context, closeID int, day calendar.Date, scheduled bool) (CloseResult, bool, error) {
	run := closeRun{db: s.db, id: closeID}
	if _, busy := runningCloses.LoadOrStore(run, struct{}{}); busy {
		return CloseResult{Day: day}, false, nil
	}
	defer runningCloses.Delete(run)
	if s.dialect == dialect.Postgres {
		unlock, ok, err := s.tryAdvisoryLock(ctx, closeLockBase+int64(closeID))
		if err != nil {
			return CloseResult{}, false, err
		}
		if !ok {
			return CloseResult{Day: day}, false, nil
		}
		defer unlock()
	}
	var after int64
	for batch := 1; ; batch++ {
		last, n, err := s.payoutBatch(ctx, closeID, day, after)
		if err != nil {
			return CloseResult{}, true, err
		}
		if n == 0 {
			break
		}
		after = last
		if s.afterCloseBatch != nil {
			if err := s.afterCloseBatch(batch); err != nil {
				return CloseResult{}, true, err
			}
		}
	}
	res, finished, err := s.finishClose(ctx, closeID, day, scheduled)
	if err != nil {
		return CloseResult{}, true, err
	}
	if !finished {
		return res, false, nil // finished by an earlier or concurrent run
	}
	s.notify()
	s.log.InfoContext(ctx, "billing day closed", "day", day.String(), "scheduled", scheduled,
		"paidAccounts", res.PaidAccounts, "totalPaid", res.TotalPaid.String())
	return res, true, nil
}

// tryAdvisoryLock takes a PostgreSQL session advisory lock on a dedicated connection.
func (s *Service) tryAdvisoryLock(ctx context.Context, key int64) (unlock func(), ok bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("accounting: close lock: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		conn.Close()
		if err != nil {
			return nil, false, fmt.Errorf("accounting: close lock: %w", err)
		}
		return nil, false, nil
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
		conn.Close()
	}, true, nil
}

// paidAccount is one account in a payout batch.
type paidAccount struct {
	key     int64
	id      string
	balance int64
}

// payoutBatch pays the next positive balances after the account key, in one transaction: each
// gets a PAYOUT entry for its whole balance (balance → 0, entry day = the closed day), a
// payment, an email job and their events; the close's totals grow in the same transaction. It
// pays nobody (n = 0) once the close is finished: the close's row is locked first, so a batch
// and the close's finish never interleave.
func (s *Service) payoutBatch(ctx context.Context, closeID int, day calendar.Date, after int64) (last int64, n int, err error) {
	err = s.inTx(ctx, func(tx *accountingdb.Tx) error {
		lock := ""
		if s.dialect == dialect.Postgres {
			lock = " FOR UPDATE"
		}
		_, err := queryInt(ctx, tx, s.sql(`SELECT id FROM day_closes WHERE id = $1 AND finished_at IS NULL`+lock), closeID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // finished: nothing more to pay in this close
		}
		if err != nil {
			return fmt.Errorf("accounting: reading the close: %w", err)
		}
		rows, err := tx.QueryContext(ctx, s.sql(`SELECT id, public_id, balance FROM accounts
			WHERE balance > 0 AND id > $1 ORDER BY id LIMIT $2`+lock), after, closeBatch)
		if err != nil {
			return fmt.Errorf("accounting: reading balances: %w", err)
		}
		var batch []paidAccount
		for rows.Next() {
			var a paidAccount
			if err := rows.Scan(&a.key, &a.id, &a.balance); err != nil {
				rows.Close()
				return fmt.Errorf("accounting: reading balances: %w", err)
			}
			batch = append(batch, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("accounting: reading balances: %w", err)
		}
		n = len(batch)
		if n == 0 {
			return nil
		}
		last = batch[n-1].key
		return s.payOut(ctx, tx, closeID, day, batch)
	})
	return last, n, err
}

func (s *Service) payOut(ctx context.Context, tx *accountingdb.Tx, closeID int, day calendar.Date, batch []paidAccount) error {
	now := s.now().UTC()
	keys := make([]string, len(batch))
	for i, a := range batch {
		keys[i] = strconv.FormatInt(a.key, 10)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = 0 WHERE id IN ("+strings.Join(keys, ",")+")"); err != nil {
		return fmt.Errorf("accounting: zeroing balances: %w", err)
	}
	entryIDs := make([]uuid.UUID, len(batch))
	entryArgs := make([]any, 0, 9*len(batch))
	for i, a := range batch {
		entryIDs[i] = uuid.New()
		entryArgs = append(entryArgs, entryIDs[i].String(), a.id, string(Payout), -a.balance, int64(0), nil, now, day.String(), "payout:"+entryIDs[i].String())
	}
	seqRows, err := tx.QueryContext(ctx, s.sql(`INSERT INTO entries (public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id)
		VALUES `+values(len(batch), 9)+` RETURNING id, public_id`), entryArgs...)
	if err != nil {
		return fmt.Errorf("accounting: storing payout entries: %w", err)
	}
	seqs := make(map[string]int64, len(batch))
	for seqRows.Next() {
		var seq int64
		var id string
		if err := seqRows.Scan(&seq, &id); err != nil {
			seqRows.Close()
			return fmt.Errorf("accounting: storing payout entries: %w", err)
		}
		seqs[id] = seq
	}
	seqRows.Close()
	if err := seqRows.Err(); err != nil {
		return fmt.Errorf("accounting: storing payout entries: %w", err)
	}
	paymentIDs := make([]uuid.UUID, len(batch))
	payArgs := make([]any, 0, 8*len(batch))
	jobArgs := make([]any, 0, 6*len(batch))
	recs := make([]outbox.Record, 0, 2*len(batch))
	var total int64
	for i, a := range batch {
		paymentIDs[i] = uuid.New()
		payArgs = append(payArgs, paymentIDs[i].String(), a.id, a.balance, day.String(), entryIDs[i].String(), closeID, now, false)
		jobArgs = append(jobArgs, paymentIDs[i].String(), a.id, 0, now, "", nil)
		total += a.balance
		changed, err := event.New(ctx, Producer, contract.BalanceChanged, 1, now, contract.BalanceChangedV1{
			EntryID: entryIDs[i].String(), Sequence: seqs[entryIDs[i].String()], AccountID: a.id, Type: string(Payout),
			Amount: -a.balance, BalanceAfter: 0, Description: "Payout for " + day.String(), OccurredAt: now, Day: day.String(),
		})
		if err != nil {
			return err
		}
		paid, err := event.New(ctx, Producer, contract.PaymentMade, 1, now, contract.PaymentMadeV1{
			PaymentID: paymentIDs[i].String(), AccountID: a.id, Amount: a.balance, Day: day.String(), PaidAt: now,
		})
		if err != nil {
			return err
		}
		recs = append(recs, outbox.Record{Key: a.id, Envelope: changed}, outbox.Record{Key: a.id, Envelope: paid})
	}
	if _, err := tx.ExecContext(ctx, s.sql(`INSERT INTO payments (public_id, account_id, amount, day, entry_id, close_id, created_at, email_sent)
		VALUES `+values(len(batch), 8)), payArgs...); err != nil {
		return fmt.Errorf("accounting: storing payments: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.sql(`INSERT INTO email_jobs (payment_id, account_id, attempts, next_attempt_at, last_error, sent_at)
		VALUES `+values(len(batch), 6)), jobArgs...); err != nil {
		return fmt.Errorf("accounting: queueing payment emails: %w", err)
	}
	if err := s.outbox.Append(ctx, tx, recs...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.sql(`UPDATE day_closes SET paid_accounts = paid_accounts + $1, total_paid = total_paid + $2 WHERE id = $3`),
		len(batch), total, closeID); err != nil {
		return fmt.Errorf("accounting: counting the close: %w", err)
	}
	return nil
}

// values returns "($1, …, $cols), (…)" for rows rows.
func values(rows, cols int) string {
	var b strings.Builder
	n := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// finishClose marks the close finished (once) and publishes day.closed with its totals; it
// reports whether this call finished it.
func (s *Service) finishClose(ctx context.Context, closeID int, day calendar.Date, scheduled bool) (CloseResult, bool, error) {
	var res CloseResult
	var finished bool
	err := s.inTx(ctx, func(tx *accountingdb.Tx) error {
		now := s.now().UTC()
		n, err := tx.DayClose.Update().Where(dayclose.ID(closeID), dayclose.FinishedAtIsNil()).SetFinishedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("accounting: finishing the close: %w", err)
		}
		c, err := tx.DayClose.Get(ctx, closeID)
		if err != nil {
			return fmt.Errorf("accounting: finishing the close: %w", err)
		}
		res = CloseResult{Day: day, PaidAccounts: c.PaidAccounts, TotalPaid: money.Cents(c.TotalPaid)}
		if n == 0 {
			return nil // finished by an earlier run
		}
		finished = true
		e, err := event.New(ctx, Producer, contract.DayClosed, 1, now, contract.DayClosedV1{
			Day: day.String(), Scheduled: scheduled, PaidAccounts: c.PaidAccounts, TotalPaid: c.TotalPaid, ClosedAt: now,
		})
		if err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, outbox.Record{Key: "day:" + day.String(), Envelope: e})
	})
	return res, finished && err == nil, err
}

// ResumeCloses finishes scheduled closes a crash interrupted, and closes the day before today
// if the schedule has not (a process that was down at the end of the day), so no day is left
// unpaid (R-ACC-8). It assumes a schedule that closes once a day.
func (s *Service) ResumeCloses(ctx context.Context) error {
	open, err := s.client.DayClose.Query().Where(dayclose.ScheduledDayNotNil(), dayclose.FinishedAtIsNil()).All(ctx)
	if err != nil {
		return fmt.Errorf("accounting: looking for unfinished closes: %w", err)
	}
	var errList []error
	for _, c := range open {
		day, perr := calendar.Parse(c.Day)
		if perr != nil {
			errList = append(errList, perr)
			continue
		}
		if _, _, err := s.CloseScheduled(ctx, day); err != nil {
			errList = append(errList, err)
		}
	}
	if _, _, err := s.CloseScheduled(ctx, s.today().AddDays(-1)); err != nil {
		errList = append(errList, err)
	}
	return errors.Join(errList...)
}

// ClosedDay returns the business day a scheduled close firing at t closes: the day that was
// current a minute before (a midnight schedule closes the day that just ended).
func (s *Service) ClosedDay(t time.Time) calendar.Date {
	return calendar.DateOf(t.Add(-time.Minute), s.loc)
}
