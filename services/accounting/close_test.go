package accounting_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/testenv"
)

// Tests of the end-of-day close (R-ACC-8): who may close, what a close pays and records, and
// that a day is closed once — across a crash, racing schedulers and a manual close racing the
// scheduled one — with nobody paid twice and nobody left out.

// lowestPrices draws the lowest price for every task: fee $10.00, reward $20.00, so a test knows
// the balance its events make.
type lowestPrices struct{}

func (lowestPrices) IntN(int) int { return 0 }

const (
	lowFee    = money.Cents(1000)
	lowReward = money.Cents(2000)
)

// closeToday is the harness clock's business day in UTC.
var closeToday = calendar.DateOf(start, time.UTC)

// mustPopug creates a WORKER through account.created and gives it a balance through the
// tracker's events: assigned tasks (−fee each) of which the first completed are completed
// (+reward each). With lowestPrices its balance is completed×$20 − assigned×$10.
func (h *harness) mustEarner(tb testing.TB, name string, assigned, completed int) uuid.UUID {
	tb.Helper()
	id := uuid.New()
	h.deliver(tb, accountCreated(tb, id, name, identity.Worker, h.clock.Now()))
	h.mustEarn(tb, id, assigned, completed)
	return id
}

// mustWork delivers assigned assignments to id, completing the first completed of them.
func (h *harness) mustEarn(tb testing.TB, id uuid.UUID, assigned, completed int) {
	tb.Helper()
	at := h.clock.Now()
	var events []event.Envelope
	for i := range assigned {
		task := uuid.New()
		events = append(events, taskCreated(tb, task, nil, fmt.Sprintf("Task %d of %s", i, id), at), taskAssigned(tb, task, id, at))
		if i < completed {
			events = append(events, taskCompleted(tb, task, id, at))
		}
	}
	h.deliver(tb, events...)
}

// paymentRow is one stored payment.
type paymentRow struct {
	ID, Account, Entry uuid.UUID
	Amount             int64
	Day                string
	CloseID            int64
	EmailSent          bool
}

func (h *harness) mustPayments(tb testing.TB) map[uuid.UUID][]paymentRow {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT public_id, account_id, entry_id, amount, day, close_id, email_sent FROM payments ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[uuid.UUID][]paymentRow{}
	for rows.Next() {
		var p paymentRow
		if err := rows.Scan(&p.ID, &p.Account, &p.Entry, &p.Amount, &p.Day, &p.CloseID, &p.EmailSent); err != nil {
			tb.Fatal(err)
		}
		out[p.Account] = append(out[p.Account], p)
	}
	mustRowsDone(tb, rows)
	return out
}

// closeRow is one stored run of the close.
type closeRow struct {
	ID           int64
	Day          string
	Scheduled    *string
	Finished     bool
	PaidAccounts int
	TotalPaid    int64
}

func (h *harness) mustCloses(tb testing.TB) []closeRow {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT id, day, scheduled_day, finished_at IS NOT NULL, paid_accounts, total_paid FROM day_closes ORDER BY id`)
	if err != nil {
		tb.Fatal(err)
	}
	var out []closeRow
	for rows.Next() {
		var c closeRow
		if err := rows.Scan(&c.ID, &c.Day, &c.Scheduled, &c.Finished, &c.PaidAccounts, &c.TotalPaid); err != nil {
			tb.Fatal(err)
		}
		out = append(out, c)
	}
	mustRowsDone(tb, rows)
	return out
}

// mustDayClosed returns the day.closed events.
func (h *harness) mustDayClosed(tb testing.TB) []contract.DayClosedV1 {
	tb.Helper()
	var out []contract.DayClosedV1
	for _, r := range h.mustOutbox(tb, contract.DayClosed) {
		d := decode[contract.DayClosedV1](tb, r.Envelope)
		if r.Key != "day:"+d.Day {
			tb.Errorf("day.closed of %s keyed %q", d.Day, r.Key)
		}
		out = append(out, d)
	}
	return out
}

// mustPaymentsMade returns the payment.made events by payment id, each checked to be one.
func (h *harness) mustPaymentsMade(tb testing.TB) map[string]contract.PaymentMadeV1 {
	tb.Helper()
	out := map[string]contract.PaymentMadeV1{}
	for _, r := range h.mustOutbox(tb, contract.PaymentMade) {
		d := decode[contract.PaymentMadeV1](tb, r.Envelope)
		if _, dup := out[d.PaymentID]; dup {
			tb.Errorf("payment %s has two payment.made events", d.PaymentID)
		}
		if r.Key != d.AccountID {
			tb.Errorf("payment.made %s keyed %q, want the account %s", d.PaymentID, r.Key, d.AccountID)
		}
		out[d.PaymentID] = d
	}
	return out
}

// mustCloseNow closes as the actor and fails on an error.
func (h *harness) mustCloseNow(tb testing.TB, svc *accounting.Service, a identity.Actor) accounting.CloseResult {
	tb.Helper()
	res, err := svc.CloseNow(context.Background(), a)
	if err != nil {
		tb.Fatalf("CloseNow: %v", err)
	}
	return res
}

// R-EVT-4: a close wakes the relay after each payout batch it commits, so its payments' events
// go out while it runs rather than at the relay's poll.
func TestCloseNotifiesPerBatch(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		var notified atomic.Int64
		h := MustService(t, db, withRand(lowestPrices{}), withNotify(func() { notified.Add(1) }))
		for _, name := range []string{"one", "two", "three"} {
			h.mustEarner(t, name, 1, 1)
		}
		accounting.SetCloseBatch(h.svc, 1)
		var batches atomic.Int64
		accounting.SetAfterCloseBatch(h.svc, func(int) error { batches.Add(1); return nil })
		before := notified.Load()
		h.clock.Set(start.Add(time.Hour))
		if res := h.mustCloseNow(t, h.svc, actor(identity.Accountant)); res.PaidAccounts != 3 {
			t.Fatalf("CloseNow paid %d accounts, want 3", res.PaidAccounts)
		}
		if b, n := batches.Load(), notified.Load()-before; b != 3 || n < b+1 {
			t.Fatalf("%d payout batches, %d wake-ups; want 3 batches, each followed by one, and one at the end", b, n)
		}
	})
}

// TestCloseNowAccess: R-ACC-8 — only ADMIN and ACCOUNTANT close the billing day; anyone else is
// FORBIDDEN, nobody logged in UNAUTHENTICATED, and a refused close stores and pays nothing.
func TestCloseNowAccess(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withRand(lowestPrices{}))
		popug := h.mustEarner(t, "kesha", 1, 1)
		for _, tc := range []struct {
			actor identity.Actor
			code  errs.Code
		}{
			{identity.Actor{}, errs.Unauthenticated},
			{identity.Actor{Role: identity.Admin}, errs.Unauthenticated}, // a role but no account
			{actor(identity.Worker), errs.Forbidden},
			{as(popug, identity.Worker), errs.Forbidden},
			{actor(identity.Manager), errs.Forbidden},
		} {
			_, err := h.svc.CloseNow(context.Background(), tc.actor)
			mustErr(t, err, tc.code, "")
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM day_closes`); n != 0 {
			t.Errorf("refused closes stored %d day_closes rows", n)
		}
		if b := h.mustBalance(t, popug); b != lowReward-lowFee {
			t.Errorf("balance after refused closes = %v, want %v", b, lowReward-lowFee)
		}
		for _, role := range []identity.Role{identity.Admin, identity.Accountant} {
			if _, err := h.svc.CloseNow(context.Background(), actor(role)); err != nil {
				t.Errorf("CloseNow as %s: %v", role, err)
			}
		}
	})
}

// TestCloseNowPaysPositiveBalances: R-ACC-8 — every positive balance is paid out whole: a PAYOUT
// entry of −balance on the closed day with balance after 0, a payment of the amount for the day,
// an email job, a balance.changed and a payment.made event; zero and negative balances are left
// as they are; the close's result and its one day.closed event carry the count and the total; a
// second close right after pays nobody. Balances stay the sums of their entries (R-ACC-3).
func TestCloseNowPaysPositiveBalances(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withRand(lowestPrices{}))
		ctx := context.Background()
		// Balances: +$10, +$30, $0, −$10, −$30, and a popug with no entry at all.
		one := h.mustEarner(t, "one", 1, 1)
		three := h.mustEarner(t, "three", 3, 3)
		zero := h.mustEarner(t, "zero", 2, 1)
		minus := h.mustEarner(t, "minus", 1, 0)
		minus3 := h.mustEarner(t, "minus3", 3, 0)
		idle := h.mustEarner(t, "idle", 0, 0)
		want := map[uuid.UUID]money.Cents{one: 1000, three: 3000, zero: 0, minus: -1000, minus3: -3000, idle: 0}
		for id, b := range want {
			if got := h.mustBalance(t, id); got != b {
				t.Fatalf("balance of %s before the close = %v, want %v", id, got, b)
			}
		}
		before := h.mustConsistent(t)

		h.clock.Set(start.Add(time.Hour))
		res := h.mustCloseNow(t, h.svc, actor(identity.Accountant))
		if res != (accounting.CloseResult{Day: closeToday, PaidAccounts: 2, TotalPaid: 4000}) {
			t.Fatalf("CloseNow = %+v, want 2 accounts paid 40.00 on %s", res, closeToday)
		}

		after := h.mustConsistent(t)
		if len(after.Entries) != len(before.Entries)+2 {
			t.Fatalf("%d entries after the close, %d before: want exactly 2 payouts", len(after.Entries), len(before.Entries))
		}
		payments := h.mustPayments(t)
		made := h.mustPaymentsMade(t)
		closes := h.mustCloses(t)
		if len(closes) != 1 || !closes[0].Finished || closes[0].Scheduled != nil || closes[0].Day != closeToday.String() ||
			closes[0].PaidAccounts != 2 || closes[0].TotalPaid != 4000 {
			t.Fatalf("day_closes = %+v, want one finished manual close of %s paying 2 accounts 40.00", closes, closeToday)
		}
		for id, b := range want {
			got := h.mustBalance(t, id)
			es := after.ByAccount(id)
			if b <= 0 {
				if got != b || len(es) != len(before.ByAccount(id)) || len(payments[id]) != 0 {
					t.Errorf("%s: balance %v with %d entries and %d payments after the close, want %v untouched",
						id, got, len(es), len(payments[id]), b)
				}
				continue
			}
			if got != 0 {
				t.Errorf("%s: balance %v after the close, want 0.00", id, got)
			}
			last := es[len(es)-1]
			if last.Type != "PAYOUT" || last.Amount != -int64(b) || last.BalanceAfter != 0 || last.Day != closeToday.String() ||
				last.Task != uuid.Nil || !last.OccurredAt.Equal(start.Add(time.Hour)) {
				t.Errorf("%s: last entry %+v, want a PAYOUT of %v to 0 on %s with no task", id, last, -b, closeToday)
			}
			ps := payments[id]
			if len(ps) != 1 {
				t.Fatalf("%s: %d payments, want 1", id, len(ps))
			}
			p := ps[0]
			if p.Amount != int64(b) || p.Day != closeToday.String() || p.Entry != last.ID || p.CloseID != closes[0].ID || p.EmailSent {
				t.Errorf("%s: payment %+v, want %v on %s for entry %s of close %d, email not sent yet", id, p, b, closeToday, last.ID, closes[0].ID)
			}
			if n := h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE public_id = $1 AND account_id = $2 AND NOT email_sent AND email_attempts = 0
				AND email_next_attempt_at IS NOT NULL`,
				p.ID.String(), id.String()); n != 1 {
				t.Errorf("%s: %d pending email jobs for payment %s, want 1", id, n, p.ID)
			}
			m, ok := made[p.ID.String()]
			if !ok || m.AccountID != id.String() || m.Amount != int64(b) || m.Day != closeToday.String() || !m.PaidAt.Equal(start.Add(time.Hour)) {
				t.Errorf("%s: payment.made %+v (found %v), want %v on %s", id, m, ok, b, closeToday)
			}
			// The service reads the payment back as the contract shows it (Payment, newest first).
			got2, err := h.svc.Payments(ctx, as(id, identity.Worker), id, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got2) != 1 || got2[0].ID != p.ID || got2[0].Amount != b || got2[0].Day != closeToday || got2[0].EmailSent ||
				!got2[0].CreatedAt.Equal(start.Add(time.Hour)) {
				t.Errorf("%s: Payments = %+v, want the one payment of %v", id, got2, b)
			}
			// R-ACC-9: the day shows what it earned and what was paid out at its close.
			days, err := h.svc.Days(ctx, as(id, identity.Worker), id, closeToday.AddDays(-1), closeToday)
			if err != nil {
				t.Fatal(err)
			}
			if days[0].PaidOut != 0 || days[1].PaidOut != b || days[1].Earned != b {
				t.Errorf("%s: days = %+v, want %v earned and paid out on %s", id, days, b, closeToday)
			}
		}
		if len(made) != 2 {
			t.Errorf("%d payment.made events, want 2", len(made))
		}
		dc := h.mustDayClosed(t)
		if len(dc) != 1 || dc[0].Day != closeToday.String() || dc[0].Scheduled || dc[0].PaidAccounts != 2 || dc[0].TotalPaid != 4000 {
			t.Fatalf("day.closed events = %+v, want one manual close of %s paying 2 accounts 40.00", dc, closeToday)
		}

		// A second close right after pays nobody, and says so in its own day.closed.
		res = h.mustCloseNow(t, h.svc, actor(identity.Admin))
		if res != (accounting.CloseResult{Day: closeToday}) {
			t.Errorf("second CloseNow = %+v, want nobody paid", res)
		}
		again := h.mustConsistent(t)
		if len(again.Entries) != len(after.Entries) {
			t.Errorf("the second close made %d entries", len(again.Entries)-len(after.Entries))
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM payments`); n != 2 {
			t.Errorf("%d payments after the second close, want 2", n)
		}
		if dc := h.mustDayClosed(t); len(dc) != 2 || dc[1].PaidAccounts != 0 || dc[1].TotalPaid != 0 {
			t.Errorf("day.closed events = %+v, want a second one paying nobody", dc)
		}

		// Money earned after a close is paid at the next one, once.
		h.mustEarn(t, minus, 1, 1) // −$10 − $10 + $20: $0
		h.mustEarn(t, zero, 2, 2)  // $0 → +$20
		res = h.mustCloseNow(t, h.svc, actor(identity.Admin))
		if res.PaidAccounts != 1 || res.TotalPaid != 2000 {
			t.Errorf("third CloseNow = %+v, want zero's 20.00 only", res)
		}
		final := h.mustConsistent(t)
		for _, id := range []uuid.UUID{one, three, zero, minus, minus3, idle} {
			if b := h.mustBalance(t, id); b > 0 {
				t.Errorf("%s: balance %v after the closes, want nothing positive left", id, b)
			}
		}
		if n := len(final.ByAccount(zero)); final.ByAccount(zero)[n-1].Type != "PAYOUT" {
			t.Errorf("zero's last entry is %s, want its PAYOUT", final.ByAccount(zero)[n-1].Type)
		}
	})
}

// TestCloseScheduledOnce: the scheduled close of a day pays with that day as the entries' day,
// once: a second call for the day pays nobody, reports it did not run, and returns the totals of
// the close that did; day.closed is published once, marked scheduled (R-ACC-8).
func TestCloseScheduledOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withRand(lowestPrices{}))
		ctx := context.Background()
		a := h.mustEarner(t, "alpha", 2, 2)
		b := h.mustEarner(t, "bravo", 2, 0)
		yesterday := closeToday.AddDays(-1)
		h.clock.Set(start.Add(14 * time.Hour)) // midnight UTC has passed: it is the next day

		res, ran, err := h.svc.CloseScheduled(ctx, yesterday)
		if err != nil || !ran || res != (accounting.CloseResult{Day: yesterday, PaidAccounts: 1, TotalPaid: 2000}) {
			t.Fatalf("CloseScheduled = %+v, %v, %v; want it to run and pay a's 20.00", res, ran, err)
		}
		l := h.mustConsistent(t)
		es := l.ByAccount(a)
		if last := es[len(es)-1]; last.Type != "PAYOUT" || last.Day != yesterday.String() || last.Amount != -2000 {
			t.Errorf("a's last entry = %+v, want a PAYOUT of −20.00 on %s (the closed day)", last, yesterday)
		}
		if p := h.mustPayments(t)[a]; len(p) != 1 || p[0].Day != yesterday.String() {
			t.Errorf("a's payments = %+v, want one for %s", p, yesterday)
		}
		if h.mustBalance(t, b) != -2000 {
			t.Errorf("b's negative balance changed")
		}

		h.mustEarn(t, a, 1, 1) // new money: not paid again by yesterday's close
		for range 2 {
			res, ran, err = h.svc.CloseScheduled(ctx, yesterday)
			if err != nil || ran || res != (accounting.CloseResult{Day: yesterday, PaidAccounts: 1, TotalPaid: 2000}) {
				t.Fatalf("CloseScheduled again = %+v, %v, %v; want the first close's totals, not run", res, ran, err)
			}
		}
		if h.mustBalance(t, a) != 1000 {
			t.Errorf("a's new money was paid by a closed day's close")
		}
		closes := h.mustCloses(t)
		if len(closes) != 1 || closes[0].Scheduled == nil || *closes[0].Scheduled != yesterday.String() {
			t.Errorf("day_closes = %+v, want one scheduled close of %s", closes, yesterday)
		}
		dc := h.mustDayClosed(t)
		if len(dc) != 1 || !dc[0].Scheduled || dc[0].Day != yesterday.String() || dc[0].PaidAccounts != 1 || dc[0].TotalPaid != 2000 {
			t.Errorf("day.closed events = %+v, want one scheduled close of %s", dc, yesterday)
		}
		// The next day's close pays the new money with its own day.
		res, ran, err = h.svc.CloseScheduled(ctx, closeToday)
		if err != nil || !ran || res.PaidAccounts != 1 || res.TotalPaid != 1000 {
			t.Errorf("CloseScheduled(%s) = %+v, %v, %v; want a's 10.00", closeToday, res, ran, err)
		}
		h.mustConsistent(t)
	})
}

// seededBalances is a set of accounts inserted straight into the database with a positive balance and
// one REWARD entry of that amount each, so balance = sum of entries holds (R-ACC-3).
type seededBalances map[uuid.UUID]int64

func (s seededBalances) total() int64 {
	var t int64
	for _, v := range s {
		t += v
	}
	return t
}

// mustSeed inserts n accounts with positive balances of 1.00 … 100.00, fast (multi-row INSERTs
// in one transaction): thousands of accounts without thousands of events.
func (h *harness) mustSeedBalances(tb testing.TB, n int) seededBalances {
	tb.Helper()
	ctx := context.Background()
	tx, err := h.db.SQL.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	out := seededBalances{}
	now := h.clock.Now().UTC().Add(-time.Hour)
	const chunk = 500
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		var acc, ent strings.Builder
		var accArgs, entArgs []any
		for i := lo; i < hi; i++ {
			id := uuid.New()
			amount := int64(100 + (i*7919)%10000)
			out[id] = amount
			if i > lo {
				acc.WriteString(", ")
				ent.WriteString(", ")
			}
			k := len(accArgs)
			fmt.Fprintf(&acc, "($%d, $%d, $%d, $%d, 'WORKER', true, 1, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6)
			name := fmt.Sprintf("seeded_%d", i)
			accArgs = append(accArgs, id.String(), name, name+"@uberpopug.com", "Seeded "+name, amount, now)
			k = len(entArgs)
			fmt.Fprintf(&ent, "($%d, $%d, 'REWARD', $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7)
			entArgs = append(entArgs, uuid.NewString(), id.String(), amount, amount, now, calendar.DateOf(now, h.loc).String(), "seed:"+id.String())
		}
		if _, err := tx.ExecContext(ctx, h.q(`INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, created_at) VALUES `+acc.String()), accArgs...); err != nil {
			tb.Fatalf("seeding accounts: %v", err)
		}
		if _, err := tx.ExecContext(ctx, h.q(`INSERT INTO entries (public_id, account_id, type, amount, balance_after, occurred_at, day, source_event_id) VALUES `+ent.String()), entArgs...); err != nil {
			tb.Fatalf("seeding entries: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// mustPaidOnce checks, with SQL, that every seededBalances account was paid exactly once its whole
// seededBalances balance — one PAYOUT entry to 0, one payment, one email job, one payment.made and one
// balance.changed — and is at 0; that no other account was paid; that every balance is the sum
// of its entries; and that the payments add up to each close's totals. It returns the payout
// count and total.
func (h *harness) mustPaidOnce(tb testing.TB, want seededBalances) (int, int64) {
	tb.Helper()
	type payout struct {
		n, entries, jobs int
		amount, balance  int64
		after            int64
	}
	got := map[uuid.UUID]*payout{}
	rows, err := h.db.SQL.Query(`SELECT a.public_id, a.balance, COALESCE(e.n, 0), COALESCE(e.amount, 0), COALESCE(e.after, 0),
			COALESCE(t.sum, 0), COALESCE(j.n, 0)
		FROM accounts a
		LEFT JOIN (SELECT account_id, COUNT(*) AS n, SUM(amount) AS amount, MAX(ABS(balance_after)) AS after
			FROM entries WHERE type = 'PAYOUT' GROUP BY account_id) e ON e.account_id = a.public_id
		LEFT JOIN (SELECT account_id, SUM(amount) AS sum FROM entries GROUP BY account_id) t ON t.account_id = a.public_id
		LEFT JOIN (SELECT account_id, COUNT(*) AS n FROM payments WHERE email_next_attempt_at IS NOT NULL GROUP BY account_id) j
			ON j.account_id = a.public_id`)
	if err != nil {
		tb.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var p payout
		var sum int64
		if err := rows.Scan(&id, &p.balance, &p.n, &p.amount, &p.after, &sum, &p.jobs); err != nil {
			tb.Fatal(err)
		}
		if sum != p.balance {
			tb.Errorf("account %s: balance %d ≠ sum of entries %d (R-ACC-3)", id, p.balance, sum)
		}
		got[id] = &p
	}
	mustRowsDone(tb, rows)
	bad := 0
	for id, amount := range want {
		p := got[id]
		if p == nil || p.n != 1 || p.amount != -amount || p.after != 0 || p.balance != 0 || p.jobs != 1 {
			if bad++; bad <= 5 {
				tb.Errorf("seededBalances %s (%d): %+v, want exactly one PAYOUT of %d to 0 and one email job", id, amount, p, -amount)
			}
		}
	}
	if bad > 5 {
		tb.Errorf("… %d seededBalances accounts in all were not paid exactly once", bad)
	}
	payments := h.mustPayments(tb)
	var n int
	var total int64
	byClose := map[int64][2]int64{}
	for id, ps := range payments {
		if _, ok := want[id]; !ok {
			tb.Errorf("account %s was paid but is not one of the seededBalances accounts", id)
		}
		for _, p := range ps {
			n++
			total += p.Amount
			c := byClose[p.CloseID]
			byClose[p.CloseID] = [2]int64{c[0] + 1, c[1] + p.Amount}
		}
	}
	for _, c := range h.mustCloses(tb) {
		if got := byClose[c.ID]; got != [2]int64{int64(c.PaidAccounts), c.TotalPaid} {
			tb.Errorf("close %d counts %d accounts %d cents; its payments are %d for %d", c.ID, c.PaidAccounts, c.TotalPaid, got[0], got[1])
		}
	}
	if made := h.mustCount(tb, `SELECT COUNT(*) FROM outbox_events WHERE name = 'payment.made'`); made != n {
		tb.Errorf("%d payment.made events for %d payments", made, n)
	}
	// Every entry but the seeded ones (stored without events) has its balance.changed.
	entries := h.mustCount(tb, `SELECT COUNT(*) FROM entries WHERE source_event_id NOT LIKE 'seed:%'`)
	if changed := h.mustCount(tb, `SELECT COUNT(*) FROM outbox_events WHERE name = 'balance.changed'`); changed != entries {
		tb.Errorf("%d balance.changed events for %d entries made by the service", changed, entries)
	}
	return n, total
}

var errCrash = errors.New("simulated crash")

// TestCloseResumesAfterCrash: R-ACC-8 — a scheduled close that stops after some committed batches
// (a crash) is resumed by the next CloseScheduled of the day, from a fresh instance as after a
// restart: every positive account is paid exactly once, the close's totals are the sum of all
// its payouts, and day.closed is published once, by the run that finishes.
func TestCloseResumesAfterCrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		batch   int
		crashes []int // each run crashes after this many batches
		workers int   // payout batches in flight on PostgreSQL
	}{
		{accounting.CloseBatch, []int{2}, 1}, // the production batch size: 2 500 accounts
		{100, []int{1}, 1},
		{100, []int{3}, 1}, // after the last batch, before the close is marked finished
		{100, []int{1, 1}, 1},
		{100, []int{2, 1}, 1},
		// Batches side by side: when one crashes, the others in flight may commit or roll back.
		// A run after a crash must find a batch left to crash in: at most after+workers−1 of
		// the three batches commit per crashing run.
		{accounting.CloseBatch, []int{2}, 2},
		{100, []int{1, 1}, 2},
		{100, []int{1}, 3},
	} {
		accounts := 2*tc.batch + tc.batch/2 // three batches
		t.Run(fmt.Sprintf("batch%d/%v/workers%d", tc.batch, tc.crashes, tc.workers), func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				t.Parallel()
				h := MustService(t, db)
				want := h.mustSeedBalances(t, accounts)
				ctx := context.Background()
				day := closeToday.AddDays(-1)
				svc := h.svc
				paid := 0
				accounting.SetCloseBatch(svc, tc.batch)
				accounting.SetCloseWorkers(svc, tc.workers)
				for i, after := range tc.crashes {
					accounting.SetAfterCloseBatch(svc, func(batch int) error {
						if batch == after {
							return errCrash
						}
						return nil
					})
					_, _, err := svc.CloseScheduled(ctx, day)
					if !errors.Is(err, errCrash) {
						t.Fatalf("run %d: CloseScheduled = %v, want the crash after batch %d", i, err, after)
					}
					want := min(accounts, paid+after*tc.batch)
					paid = h.mustCount(t, `SELECT COUNT(*) FROM entries WHERE type = 'PAYOUT'`)
					if tc.workers == 1 || db.Dialect != dialect.Postgres {
						if paid != want {
							t.Fatalf("run %d: %d payouts committed before the crash, want %d", i, paid, want)
						}
					} else if least := min(accounts, want-after*tc.batch/2); paid < least {
						// Side by side, the half batch at the end may commit among the first.
						t.Fatalf("run %d: %d payouts committed before the crash, want at least %d", i, paid, least)
					}
					if c := h.mustCloses(t); len(c) != 1 || c[0].Finished || c[0].PaidAccounts != paid {
						t.Fatalf("run %d: day_closes = %+v, want one unfinished close with %d paid", i, c, paid)
					}
					if dc := h.mustDayClosed(t); len(dc) != 0 {
						t.Fatalf("run %d: day.closed published by a crashed close: %+v", i, dc)
					}
					svc, _ = h.mustReplica(t, h.db, newLockedRand(seed1, seed2)) // the restarted process
					accounting.SetCloseBatch(svc, tc.batch)
					accounting.SetCloseWorkers(svc, tc.workers)
				}
				res, ran, err := svc.CloseScheduled(ctx, day)
				if err != nil || !ran {
					t.Fatalf("resumed CloseScheduled = %+v, %v, %v", res, ran, err)
				}
				n, total := h.mustPaidOnce(t, want)
				if n != accounts || total != want.total() {
					t.Errorf("%d payments for %d, want %d for %d", n, total, accounts, want.total())
				}
				if res != (accounting.CloseResult{Day: day, PaidAccounts: accounts, TotalPaid: money.Cents(want.total())}) {
					t.Errorf("resumed close = %+v, want %d accounts for %d (all runs together)", res, accounts, want.total())
				}
				c := h.mustCloses(t)
				if len(c) != 1 || !c[0].Finished || c[0].PaidAccounts != accounts || c[0].TotalPaid != want.total() {
					t.Errorf("day_closes = %+v, want one finished close with every payout", c)
				}
				dc := h.mustDayClosed(t)
				if len(dc) != 1 || dc[0].PaidAccounts != accounts || dc[0].TotalPaid != want.total() || !dc[0].Scheduled {
					t.Errorf("day.closed = %+v, want one with %d accounts for %d", dc, accounts, want.total())
				}
				if _, ran, err := svc.CloseScheduled(ctx, day); err != nil || ran {
					t.Errorf("CloseScheduled after the finish: ran %v, %v", ran, err)
				}
			})
		})
	}
}

// mustClosePool opens another connection pool on db's database, as a second process has.
func mustClosePool(tb testing.TB, db *storage.DB) *storage.DB {
	tb.Helper()
	if db.Dialect == dialect.SQLite {
		db2, err := storage.OpenSQLite(context.Background(), db.Name)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { db2.Close() })
		return db2
	}
	u, err := url.Parse(testenv.PostgresURL())
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + db.Name
	db2 := storagetest.MustOpenPostgres(tb, u.String())
	db2.SQL.SetMaxOpenConns(6) // the server's connections are shared by every test running
	return db2
}

// closeCall is one concurrent call's outcome.
type closeCall struct {
	res accounting.CloseResult
	ran bool
	err error
}

// race runs the calls at once (after a common start) and returns their outcomes.
func raceCalls(calls ...func() closeCall) []closeCall {
	out := make([]closeCall, len(calls))
	startGun := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			<-startGun
			out[i] = c()
		})
	}
	close(startGun)
	wg.Wait()
	return out
}

// TestCloseSchedulersRace: R-ACC-8 — several instances (two pools on one database, as two
// processes, and two callers in each) run the scheduled close of one day at once: exactly one
// call finishes it and reports the full totals, the day has one close, every positive account is
// paid exactly once, and day.closed is published once. Run it with -count=10.
func TestCloseSchedulersRace(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		want := h.mustSeedBalances(t, 150)
		other, _ := h.mustReplica(t, mustClosePool(t, db), newLockedRand(seed1, seed2))
		accounting.SetCloseBatch(h.svc, 100) // two batches each
		accounting.SetCloseBatch(other, 100)
		day := closeToday.AddDays(-1)
		call := func(svc *accounting.Service) func() closeCall {
			return func() closeCall {
				res, ran, err := svc.CloseScheduled(context.Background(), day)
				return closeCall{res, ran, err}
			}
		}
		calls := raceCalls(call(h.svc), call(other), call(h.svc), call(other))
		full := accounting.CloseResult{Day: day, PaidAccounts: len(want), TotalPaid: money.Cents(want.total())}
		finished := 0
		for i, c := range calls {
			if c.err != nil {
				t.Fatalf("call %d: %v", i, c.err)
			}
			if c.ran {
				finished++
				if c.res != full {
					t.Errorf("call %d finished the close with %+v, want the full %+v", i, c.res, full)
				}
			} else if c.res.Day != day || (c.res.PaidAccounts != 0 && c.res != full) {
				t.Errorf("call %d did not run and returned %+v: want nothing, or the full totals", i, c.res)
			}
		}
		if finished != 1 {
			t.Errorf("%d calls report finishing the close, want exactly 1: %+v", finished, calls)
		}
		n, total := h.mustPaidOnce(t, want)
		if n != len(want) || total != want.total() {
			t.Errorf("%d payments for %d, want %d for %d", n, total, len(want), want.total())
		}
		if c := h.mustCloses(t); len(c) != 1 || !c[0].Finished || c[0].PaidAccounts != len(want) || c[0].TotalPaid != want.total() {
			t.Errorf("day_closes = %+v, want one finished close with every payout", c)
		}
		if dc := h.mustDayClosed(t); len(dc) != 1 || dc[0].PaidAccounts != len(want) || dc[0].TotalPaid != want.total() {
			t.Errorf("day.closed = %+v, want exactly one with the full totals", dc)
		}
	})
}

// TestManualCloseRacesScheduledClose: R-ACC-8 — closeBillingDay on one instance while the
// scheduled close runs on another, and the tracker's events keep coming: nobody is paid twice,
// every payout is its account's whole balance at that moment (the entry before it ends at the
// amount paid), balances stay the sums of their entries, and the two closes' totals are their
// payments.
func TestManualCloseRacesScheduledClose(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withRand(lowestPrices{}))
		want := h.mustSeedBalances(t, 250)
		other, _ := h.mustReplica(t, mustClosePool(t, db), lowestPrices{})
		accounting.SetCloseBatch(h.svc, 50) // five batches each: the closes interleave
		accounting.SetCloseBatch(other, 50)
		ids := make([]uuid.UUID, 0, len(want))
		for id := range want {
			ids = append(ids, id)
		}
		// Events for 40 of the accounts while the closes run: a fee (−$10), then for half of them
		// a reward (+$20).
		racing := ids[:40]
		var deliveries []bus.Delivery
		for i, id := range racing {
			task := uuid.New()
			events := []event.Envelope{taskCreated(t, task, nil, "Racing task", h.clock.Now()), taskAssigned(t, task, id, h.clock.Now())}
			if i%2 == 0 {
				events = append(events, taskCompleted(t, task, id, h.clock.Now()))
			}
			for _, e := range events {
				deliveries = append(deliveries, mustDelivery(t, e))
			}
		}
		var deliverErr error
		calls := raceCalls(
			func() closeCall {
				res, err := h.svc.CloseNow(context.Background(), actor(identity.Accountant))
				return closeCall{res, err == nil, err}
			},
			func() closeCall {
				res, ran, err := other.CloseScheduled(context.Background(), closeToday.AddDays(-1))
				return closeCall{res, ran, err}
			},
			func() closeCall {
				for _, d := range deliveries {
					if err := h.handle(context.Background(), d); err != nil {
						deliverErr = err
						break
					}
				}
				return closeCall{}
			},
		)
		if deliverErr != nil {
			t.Fatalf("delivering events during the closes: %v", deliverErr)
		}
		h.mustNoDeadLetters(t)
		for i, c := range calls[:2] {
			if c.err != nil || !c.ran {
				t.Fatalf("close %d: ran %v, %v", i, c.ran, c.err)
			}
		}
		// Every payout is the whole balance before it, each account paid at most once per close,
		// and the seededBalances accounts all paid.
		rows, err := db.SQL.Query(`SELECT account_id, type, amount, balance_after, day FROM entries ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		balance := map[uuid.UUID]int64{}
		payouts := map[uuid.UUID][]string{}
		for rows.Next() {
			var id uuid.UUID
			var typ, day string
			var amount, after int64
			if err := rows.Scan(&id, &typ, &amount, &after, &day); err != nil {
				t.Fatal(err)
			}
			if typ == "PAYOUT" {
				if balance[id] <= 0 || amount != -balance[id] || after != 0 {
					t.Errorf("%s: PAYOUT of %d to %d with balance %d before it, want the whole positive balance to 0", id, amount, after, balance[id])
				}
				payouts[id] = append(payouts[id], day)
			}
			balance[id] += amount
			if after != balance[id] {
				t.Errorf("%s: balance_after %d, entries sum to %d", id, after, balance[id])
			}
		}
		mustRowsDone(t, rows)
		// A seededBalances account the events left alone is paid exactly once, by one of the closes; a
		// racing one at most once per close (the chain check above refuses a payout of nothing).
		for id := range want {
			ds := payouts[id]
			if containsID(racing, id) {
				if len(ds) > 2 || (len(ds) == 2 && ds[0] == ds[1]) {
					t.Errorf("racing %s paid on %v: want at most once per close", id, ds)
				}
			} else if len(ds) != 1 {
				t.Errorf("%s paid %d times (%v), want exactly once", id, len(ds), ds)
			}
		}
		n, _ := h.mustPaymentsByClose(t)
		if n != len(h.mustCloses(t)) || n != 2 {
			t.Errorf("%d closes with payments checked, want 2", n)
		}
		if dc := h.mustDayClosed(t); len(dc) != 2 {
			t.Errorf("%d day.closed events, want one per close", len(dc))
		}
	})
}

func containsID(ids []uuid.UUID, id uuid.UUID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// mustPaymentsByClose checks every close's totals against its payments and the balances
// against their entries; it returns how many closes it checked.
func (h *harness) mustPaymentsByClose(tb testing.TB) (int, int64) {
	tb.Helper()
	byClose := map[int64][2]int64{}
	var total int64
	for _, ps := range h.mustPayments(tb) {
		for _, p := range ps {
			c := byClose[p.CloseID]
			byClose[p.CloseID] = [2]int64{c[0] + 1, c[1] + p.Amount}
			total += p.Amount
		}
	}
	closes := h.mustCloses(tb)
	for _, c := range closes {
		if !c.Finished || byClose[c.ID] != [2]int64{int64(c.PaidAccounts), c.TotalPaid} {
			tb.Errorf("close %+v: its payments are %v", c, byClose[c.ID])
		}
	}
	if n := h.mustCount(tb, `SELECT COUNT(*) FROM accounts a WHERE a.balance <>
		(SELECT COALESCE(SUM(e.amount), 0) FROM entries e WHERE e.account_id = a.public_id)`); n != 0 {
		tb.Errorf("%d accounts whose balance is not the sum of their entries (R-ACC-3)", n)
	}
	return len(closes), total
}

// TestClosedDay: the scheduled close closes the business day that was current just before it
// fired, in ATES_TIMEZONE: at midnight in Asia/Tokyo the Tokyo day that just ended, whatever
// the date in UTC; at 18:00 the same day (R-ACC-7, R-ACC-8).
func TestClosedDay(t *testing.T) {
	t.Parallel()
	tokyo := mustLocation(t, "Asia/Tokyo")
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite), inLocation(tokyo))
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 23, 0, 0, 0, 0, tokyo), "2026-11-22"},               // 2026-11-22 15:00 UTC
		{time.Date(2026, 11, 23, 0, 0, 0, 300_000_000, tokyo), "2026-11-22"},     // a tick a little late
		{time.Date(2026, 11, 23, 0, 0, 30, 0, tokyo), "2026-11-22"},              // 30 s late
		{time.Date(2026, 1, 1, 0, 0, 0, 0, tokyo), "2025-12-31"},                 // across a year
		{time.Date(2026, 3, 1, 0, 0, 0, 0, tokyo), "2026-02-28"},                 // across a month
		{time.Date(2026, 11, 22, 18, 0, 0, 0, tokyo), "2026-11-22"},              // an 18:00 schedule
		{time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), "2026-11-22"},            // midnight UTC is 18:00 in Tokyo
		{time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC), "2026-11-22"},           // midnight in Tokyo, given in UTC
		{time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC).In(tokyo), "2026-11-22"}, // the same instant in Tokyo
	} {
		if got := h.svc.ClosedDay(tc.at).String(); got != tc.want {
			t.Errorf("ClosedDay(%s) = %s, want %s", tc.at.Format(time.RFC3339Nano), got, tc.want)
		}
	}
}

// TestResumeCloses: at start a process closes the previous business day if the schedule has not
// (it was down at midnight) and finishes a scheduled close a crash interrupted — each once.
func TestResumeCloses(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		tokyo := mustLocation(t, "Asia/Tokyo")
		h := MustService(t, db, inLocation(tokyo), withRand(lowestPrices{}))
		ctx := context.Background()
		// 2026-11-22 10:00 UTC is 19:00 in Tokyo: yesterday is 2026-11-21 there.
		tokyoToday := calendar.DateOf(start, tokyo)
		yesterday := tokyoToday.AddDays(-1)

		// A crash interrupted the close of the day before yesterday.
		accounting.SetCloseBatch(h.svc, 100)
		want := h.mustSeedBalances(t, 110)
		accounting.SetAfterCloseBatch(h.svc, func(int) error { return errCrash })
		if _, _, err := h.svc.CloseScheduled(ctx, yesterday.AddDays(-1)); !errors.Is(err, errCrash) {
			t.Fatalf("crashing close: %v", err)
		}
		accounting.SetAfterCloseBatch(h.svc, nil)
		late := h.mustEarner(t, "late", 2, 2) // +$20 after the crash

		if err := h.svc.ResumeCloses(ctx); err != nil {
			t.Fatal(err)
		}
		closes := h.mustCloses(t)
		if len(closes) != 2 {
			t.Fatalf("day_closes = %+v, want the resumed close and yesterday's", closes)
		}
		for i, day := range []calendar.Date{yesterday.AddDays(-1), yesterday} {
			c := closes[i]
			if c.Scheduled == nil || *c.Scheduled != day.String() || c.Day != day.String() || !c.Finished {
				t.Errorf("close %d = %+v, want the finished scheduled close of %s", i, c, day)
			}
		}
		// The resumed close paid everyone positive at its resumption, late included, on its day.
		all := seededBalances{late: 2000}
		for id, v := range want {
			all[id] = v
		}
		if n, total := h.mustPaidOnce(t, all); n != len(all) || total != all.total() {
			t.Errorf("%d payments for %d, want %d for %d", n, total, len(all), all.total())
		}
		if closes[0].PaidAccounts != len(all) || closes[1].PaidAccounts != 0 {
			t.Errorf("closes paid %d and %d accounts, want %d by the resumed close and none by yesterday's",
				closes[0].PaidAccounts, closes[1].PaidAccounts, len(all))
		}
		if d := h.mustCount(t, `SELECT COUNT(*) FROM entries WHERE type = 'PAYOUT' AND day <> $1`, yesterday.AddDays(-1).String()); d != 0 {
			t.Errorf("%d payouts not on the resumed close's day", d)
		}
		if dc := h.mustDayClosed(t); len(dc) != 2 || dc[0].Day != yesterday.AddDays(-1).String() || dc[1].Day != yesterday.String() {
			t.Errorf("day.closed = %+v, want one per closed day", dc)
		}

		// Restarting again closes nothing more.
		h.mustEarn(t, late, 1, 1)
		if err := h.svc.ResumeCloses(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(h.mustCloses(t)); n != 2 {
			t.Errorf("a second ResumeCloses made %d closes, want still 2", n)
		}
		if h.mustBalance(t, late) != 1000 {
			t.Errorf("late's new money was paid by a second ResumeCloses")
		}
		// The next Tokyo day: yesterday is now closeToday's date, closed at start.
		h.clock.Set(tokyoToday.AddDays(1).Start(tokyo).Add(8 * time.Hour))
		if err := h.svc.ResumeCloses(ctx); err != nil {
			t.Fatal(err)
		}
		closes = h.mustCloses(t)
		if len(closes) != 3 || closes[2].Day != tokyoToday.String() || closes[2].PaidAccounts != 1 || closes[2].TotalPaid != 1000 {
			t.Errorf("day_closes = %+v, want a third close of %s paying late's 10.00", closes, tokyoToday)
		}
	})
}
