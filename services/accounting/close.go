package accounting

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/accountingdb/dayclose"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/ids"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// closeBatch is how many accounts one payout transaction pays (Service.closeBatch; tests may
// set another).
const closeBatch = 1000

// closeWorkers is how many payout batches of one close run at once on PostgreSQL
// (Service.closeWorkers; tests may set another).
const closeWorkers = 2

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
	if err := s.payPositive(ctx, closeID, day); err != nil {
		return CloseResult{}, true, err
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

// payoutRange is a run of account keys, (after, upTo], that one worker of a close pays.
type payoutRange struct{ after, upTo int64 }

// payPositive pays every positive balance of the close, batch after batch in key order. On
// PostgreSQL s.closeWorkers batches are in flight at once, each a transaction on a connection of
// its own, so the database works on several cores: this goroutine cuts the accounts into ranges
// of closeBatch positive balances (read without locks: what a range holds is settled when its
// batch locks its rows) and the workers pay them. SQLite has one writer: one batch at a time.
// The first error stops the close; batches already committed stay, and a later run resumes.
func (s *Service) payPositive(ctx context.Context, closeID int, day calendar.Date) error {
	workers := 1
	if s.dialect == dialect.Postgres {
		workers = max(1, s.closeWorkers)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var committed atomic.Int64
	ranges := make(chan payoutRange)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for r := range ranges {
				if err := s.payRange(ctx, closeID, day, r, &committed); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	for after := int64(0); ; {
		upTo := int64(math.MaxInt64)
		if workers > 1 {
			end, more, err := s.rangeEnd(ctx, after)
			if err != nil {
				cancel(err) // a worker's error, if it came first, stays the cause
				break
			}
			if more {
				upTo = end
			}
		}
		select {
		case ranges <- payoutRange{after: after, upTo: upTo}:
		case <-ctx.Done():
		}
		if upTo == math.MaxInt64 || ctx.Err() != nil {
			break
		}
		after = upTo
	}
	close(ranges)
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// rangeEnd returns the key of the closeBatch-th positive balance after the account key, so the
// next range holds a batch; more is false when fewer are left: the last range is unbounded.
func (s *Service) rangeEnd(ctx context.Context, after int64) (end int64, more bool, err error) {
	err = s.db.QueryRowContext(ctx, s.sql(`SELECT id FROM accounts WHERE balance > 0 AND id > $1 ORDER BY id OFFSET $2 LIMIT 1`),
		after, s.closeBatch-1).Scan(&end)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("accounting: dividing the close: %w", err)
	}
	return end, true, nil
}

// payRange pays the range's positive balances, closeBatch per transaction, until none is left
// in it or the close is finished; committed counts the close's committed batches (the test hook
// afterCloseBatch sees each count).
func (s *Service) payRange(ctx context.Context, closeID int, day calendar.Date, r payoutRange, committed *atomic.Int64) error {
	for after := r.after; ; {
		last, n, err := s.payoutBatch(ctx, closeID, day, after, r.upTo)
		if err != nil || n == 0 {
			return err
		}
		s.notify() // the batch's events are committed: the relay need not wait for its poll
		if s.afterCloseBatch != nil {
			if err := s.afterCloseBatch(int(committed.Add(1))); err != nil {
				return err
			}
		}
		if n < s.closeBatch {
			return nil
		}
		after = last
	}
}

// errCloseFinished rolls back a payout batch that found its close finished when it came to
// count itself in: what it zeroed stays unpaid by this close.
var errCloseFinished = errors.New("accounting: the close was finished meanwhile")

// payoutBatch pays the next positive balances in (after, upTo], in one transaction: each gets
// a PAYOUT entry for its whole balance (balance → 0, entry day = the closed day), a payment, an
// email job and their events; the close's totals grow in the same transaction. It pays nobody
// (n = 0) once the close is finished: the batch counts itself into the close's row last, which
// locks the row and re-checks that it is unfinished, else the batch is rolled back — so a batch
// and the close's finish never interleave, while batches of one close run side by side until
// that last statement.
//
// The batch runs in a *sql.Tx on the pool under the Ent client (its statements are all SQL of
// their own), so the outbox writer can COPY the batch's events on PostgreSQL (outbox.Preparer).
func (s *Service) payoutBatch(ctx context.Context, closeID int, day calendar.Date, after, upTo int64) (last int64, n int, err error) {
	begin := func(ctx context.Context) (*sql.Tx, error) { return s.db.BeginTx(ctx, nil) }
	err = storage.InTx(ctx, begin, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, s.sql(`SELECT id FROM day_closes WHERE id = $1 AND finished_at IS NULL`), closeID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // finished: nothing more to pay in this close
		}
		if err != nil {
			return fmt.Errorf("accounting: reading the close: %w", err)
		}
		batch, err := s.zeroBatch(ctx, tx, after, upTo)
		if err != nil {
			return err
		}
		n = len(batch)
		if n == 0 {
			return nil
		}
		last = batch[n-1].key
		return s.payOut(ctx, tx, closeID, day, batch)
	})
	if errors.Is(err, errCloseFinished) {
		return 0, 0, nil
	}
	return last, n, err
}

// pgZeroBatch locks the next positive balances (re-read after any wait for a lock, so a balance
// another close just paid is skipped) and sets them to 0, counting the PAYOUT entry each gets,
// returning what they were. The ids go
// to the UPDATE as an array so it finds them through the primary key: joined to the CTE
// instead, PostgreSQL hashes the whole table for every batch.
//
// The rows are locked in public id order, the order in which ledger batches lock accounts
// (pgLockAccounts): locked in key order instead, a close batch and a ledger batch could each
// hold an account the other waits for.
const pgZeroBatch = `WITH picked AS (
	SELECT id, public_id, balance FROM accounts
	WHERE id = ANY (ARRAY(SELECT id FROM accounts WHERE balance > 0 AND id > $1 AND id <= $3 ORDER BY id LIMIT $2))
		AND balance > 0
	ORDER BY public_id FOR UPDATE),
zeroed AS (UPDATE accounts SET balance = 0, entry_count = entry_count + 1 WHERE id = ANY (ARRAY(SELECT id FROM picked)))
SELECT id, public_id, balance FROM picked`

// zeroBatch sets the next positive balances in (after, upTo] to 0 and returns them with the
// balances they had, in key order. On SQLite the transaction holds the only write lock, so the
// accounts read are zeroed by their key range in one short statement.
func (s *Service) zeroBatch(ctx context.Context, tx *sql.Tx, after, upTo int64) ([]paidAccount, error) {
	q, args := pgZeroBatch, []any{after, s.closeBatch, upTo}
	if s.dialect != dialect.Postgres {
		q = `SELECT id, public_id, balance FROM accounts WHERE balance > 0 AND id > ? AND id <= ? ORDER BY id LIMIT ?`
		args = []any{after, upTo, s.closeBatch}
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("accounting: reading balances: %w", err)
	}
	batch := make([]paidAccount, 0, s.closeBatch)
	for rows.Next() {
		var a paidAccount
		if err := rows.Scan(&a.key, &a.id, &a.balance); err != nil {
			rows.Close()
			return nil, fmt.Errorf("accounting: reading balances: %w", err)
		}
		batch = append(batch, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounting: reading balances: %w", err)
	}
	slices.SortFunc(batch, func(a, b paidAccount) int { return cmp.Compare(a.key, b.key) })
	if s.dialect != dialect.Postgres && len(batch) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = 0, entry_count = entry_count + 1 WHERE balance > 0 AND id > ? AND id <= ?`,
			after, batch[len(batch)-1].key); err != nil {
			return nil, fmt.Errorf("accounting: zeroing balances: %w", err)
		}
	}
	return batch, nil
}

// pgPayoutEntries inserts a batch's PAYOUT entries from one array per column.
const pgPayoutEntries = `INSERT INTO entries (public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id)
SELECT e.public_id, e.account_id, 'PAYOUT', e.amount, 0, NULL, $5, $6, e.source_event_id
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[]) WITH ORDINALITY AS e(public_id, account_id, amount, source_event_id, n)
ORDER BY e.n
RETURNING id, public_id`

// pgPayments inserts a batch's payments, each its own email job, due now.
const pgPayments = `INSERT INTO payments (public_id, account_id, amount, day, entry_id, close_id, created_at,
	email_sent, email_attempts, email_next_attempt_at, email_last_error)
SELECT p.public_id, p.account_id, p.amount, $5, p.entry_id, $6, $7, false, 0, $7, ''
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::uuid[]) AS p(public_id, account_id, amount, entry_id)`

// payOut records a zeroed batch: the PAYOUT entries (added to the account days), payments (with
// their emails due), events and the close's totals. PostgreSQL gets one array per column (statements of constant size however
// large the batch); SQLite multi-row VALUES with anonymous placeholders.
func (s *Service) payOut(ctx context.Context, tx *sql.Tx, closeID int, day calendar.Date, batch []paidAccount) error {
	now := s.now().UTC()
	dayStr := day.String()
	entryIDs := make([]string, len(batch))
	paymentIDs := make([]string, len(batch))
	for i := range batch {
		entryIDs[i], paymentIDs[i] = ids.NewString(), ids.NewString()
	}
	seqs, err := s.insertPayoutEntries(ctx, tx, batch, entryIDs, now, dayStr)
	if err != nil {
		return fmt.Errorf("accounting: storing payout entries: %w", err)
	}
	days := make([]dayEntry, len(batch))
	for i, a := range batch {
		id, err := uuid.Parse(a.id)
		if err != nil {
			return fmt.Errorf("accounting: account id %q: %w", a.id, err)
		}
		days[i] = dayEntry{account: id, day: dayStr, typ: Payout, amount: -a.balance}
	}
	if err := s.rollUp(ctx, tx, days); err != nil {
		return err
	}
	// The payments (each its email job) are stored while this goroutine builds, encodes and
	// validates the events; the outbox's first statement waits for them (paidFirst).
	pending := &paidFirst{tx: tx, done: make(chan struct{})}
	go func() {
		defer close(pending.done)
		if err := s.insertPayments(ctx, tx, closeID, batch, entryIDs, paymentIDs, now, dayStr); err != nil {
			pending.err = fmt.Errorf("accounting: storing payments: %w", err)
		}
	}()
	defer pending.wait() //nolint:errcheck // the transaction is the caller's again only after it
	recs := make([]outbox.Record, 0, 2*len(batch))
	var total int64
	for i, a := range batch {
		total += a.balance
		changed, err := event.New(ctx, Producer, contract.BalanceChanged, 1, now, contract.BalanceChangedV1{
			EntryID: entryIDs[i], Sequence: seqs[entryIDs[i]], AccountID: a.id, Type: string(Payout),
			Amount: -a.balance, BalanceAfter: 0, Description: "Payout for " + dayStr, OccurredAt: now, Day: dayStr,
		})
		if err != nil {
			return err
		}
		paid, err := event.New(ctx, Producer, contract.PaymentMade, 1, now, contract.PaymentMadeV1{
			PaymentID: paymentIDs[i], AccountID: a.id, Amount: a.balance, Day: dayStr, PaidAt: now,
		})
		if err != nil {
			return err
		}
		recs = append(recs, outbox.Record{Key: a.id, Envelope: changed}, outbox.Record{Key: a.id, Envelope: paid})
	}
	if err := s.outbox.Append(ctx, pending, recs...); err != nil {
		return err
	}
	if err := pending.wait(); err != nil { // Append stores nothing for an empty batch
		return err
	}
	res, err := tx.ExecContext(ctx, s.sql(`UPDATE day_closes SET paid_accounts = paid_accounts + $1, total_paid = total_paid + $2
		WHERE id = $3 AND finished_at IS NULL`), len(batch), total, closeID)
	if err != nil {
		return fmt.Errorf("accounting: counting the close: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if err != nil {
			return fmt.Errorf("accounting: counting the close: %w", err)
		}
		return errCloseFinished
	}
	return nil
}

// paidFirst is a payout batch's transaction handed to the outbox writer: its statements wait
// until the payments, stored meanwhile on another goroutine, are (one statement
// at a time on the connection), and are not run when storing them failed.
type paidFirst struct {
	tx   *sql.Tx
	done chan struct{}
	err  error // set before done is closed
}

func (p *paidFirst) wait() error {
	<-p.done
	return p.err
}

func (p *paidFirst) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := p.wait(); err != nil {
		return nil, err
	}
	return p.tx.ExecContext(ctx, query, args...)
}

// PrepareContext lets the outbox writer COPY on PostgreSQL (outbox.Preparer).
func (p *paidFirst) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := p.wait(); err != nil {
		return nil, err
	}
	return p.tx.PrepareContext(ctx, query)
}

// insertPayoutEntries stores the batch's PAYOUT entries (amount −balance, balance after 0) and
// returns their sequence numbers (row ids) by entry id.
func (s *Service) insertPayoutEntries(ctx context.Context, tx *sql.Tx, batch []paidAccount, entryIDs []string, now time.Time, day string) (map[string]int64, error) {
	var rows *sql.Rows
	var err error
	if s.dialect == dialect.Postgres {
		accounts, amounts, sources := make([]string, len(batch)), make([]int64, len(batch)), make([]string, len(batch))
		for i, a := range batch {
			accounts[i], amounts[i], sources[i] = a.id, -a.balance, "payout:"+entryIDs[i]
		}
		rows, err = tx.QueryContext(ctx, pgPayoutEntries, pq.StringArray(entryIDs), pq.StringArray(accounts),
			pq.Int64Array(amounts), pq.StringArray(sources), now, day)
	} else {
		args := make([]any, 0, 6*len(batch))
		for i, a := range batch {
			args = append(args, entryIDs[i], a.id, -a.balance, now, day, "payout:"+entryIDs[i])
		}
		rows, err = tx.QueryContext(ctx, `INSERT INTO entries (public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id)
			VALUES `+sqliteValues(len(batch), "(?, ?, 'PAYOUT', ?, 0, NULL, ?, ?, ?)")+` RETURNING id, public_id`, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seqs := make(map[string]int64, len(batch))
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, err
		}
		seqs[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(seqs) != len(batch) {
		return nil, fmt.Errorf("%d entries stored for %d payouts", len(seqs), len(batch))
	}
	return seqs, nil
}

// insertPayments stores the batch's payments, each its own email job, due now.
func (s *Service) insertPayments(ctx context.Context, tx *sql.Tx, closeID int, batch []paidAccount, entryIDs, paymentIDs []string, now time.Time, day string) error {
	if s.dialect == dialect.Postgres {
		accounts, amounts := make([]string, len(batch)), make([]int64, len(batch))
		for i, a := range batch {
			accounts[i], amounts[i] = a.id, a.balance
		}
		_, err := tx.ExecContext(ctx, pgPayments, pq.StringArray(paymentIDs), pq.StringArray(accounts),
			pq.Int64Array(amounts), pq.StringArray(entryIDs), day, closeID, now)
		return err
	}
	args := make([]any, 0, 7*len(batch))
	for i, a := range batch {
		args = append(args, paymentIDs[i], a.id, a.balance, day, entryIDs[i], now, now)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO payments (public_id, account_id, amount, day, entry_id, close_id, created_at,
		email_sent, email_attempts, email_next_attempt_at, email_last_error)
		VALUES `+sqliteValues(len(batch), "(?, ?, ?, ?, ?, "+strconv.Itoa(closeID)+", ?, false, 0, ?, '')"), args...)
	return err
}

// sqliteValues repeats one VALUES row of anonymous placeholders: numbered ones (?NNN) cost the
// SQLite driver a linear search per parameter, quadratic in a large multi-row INSERT.
func sqliteValues(rows int, row string) string {
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
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
