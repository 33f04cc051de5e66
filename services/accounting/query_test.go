package accounting_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// pageAll is the largest page.
var pageAll = page.Request{First: page.MaxFirst}

// TestAccountAccess: R-ACC-5 — a WORKER or MANAGER sees their own billing account (0.00 before
// accounting heard of them) and no other; ADMIN and ACCOUNTANT see any known account, and an
// unknown one is NOT_FOUND; nobody anonymous sees anything.
func TestAccountAccess(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		known, task, unknown := uuid.New(), uuid.New(), uuid.New()
		h.deliver(t, accountCreated(t, known, "known_popug", identity.Worker, start), taskAssigned(t, task, known, start))
		fee := h.mustPrice(t, task).Fee

		for _, role := range []identity.Role{identity.Worker, identity.Manager} {
			self := uuid.New()
			got, err := h.svc.Account(ctx, as(self, role), self)
			if err != nil || got != (accounting.BillingAccount{AccountID: self}) {
				t.Errorf("%s, own account unknown to accounting: %+v, %v; want 0.00", role, got, err)
			}
			for _, other := range []uuid.UUID{known, unknown} {
				_, err := h.svc.Account(ctx, as(self, role), other)
				mustErr(t, err, errs.Forbidden, "")
				_, err = h.svc.Entries(ctx, as(self, role), other, nil, pageAll)
				mustErr(t, err, errs.Forbidden, "")
				_, err = h.svc.Days(ctx, as(self, role), other, mustDate(t, "2026-11-22"), mustDate(t, "2026-11-22"))
				mustErr(t, err, errs.Forbidden, "")
			}
		}
		// The known popug sees their own account.
		got, err := h.svc.Account(ctx, as(known, identity.Worker), known)
		if err != nil || got != (accounting.BillingAccount{AccountID: known, Balance: -fee, EarnedToday: -fee}) {
			t.Errorf("own account: %+v, %v; want balance and earned today -%v", got, err, fee)
		}
		for _, role := range []identity.Role{identity.Admin, identity.Accountant} {
			got, err := h.svc.Account(ctx, actor(role), known)
			if err != nil || got != (accounting.BillingAccount{AccountID: known, Balance: -fee, EarnedToday: -fee}) {
				t.Errorf("%s: %+v, %v; want balance -%v", role, got, err, fee)
			}
			_, err = h.svc.Account(ctx, actor(role), unknown)
			mustErr(t, err, errs.NotFound, "")
		}
		_, err = h.svc.Account(ctx, identity.Actor{Role: identity.Admin}, known)
		mustErr(t, err, errs.Unauthenticated, "")
		// Looking does not open accounts.
		if n := h.mustCount(t, `SELECT COUNT(*) FROM accounts`); n != 1 {
			t.Errorf("%d billing accounts after the queries, want 1", n)
		}
	})
}

// TestEntriesNewestFirstPaged: R-ACC-5, R-API-5 — the audit log lists an account's entries
// newest first, page by page with cursors, balanceAfter chaining across pages; filtered by a
// business day it holds that day's entries only.
func TestEntriesNewestFirstPaged(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug, other := uuid.New(), uuid.New()
		t1, t2, t3, t4 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		yesterday, today := start.Add(-24*time.Hour), start
		h.deliver(t,
			taskAssigned(t, t1, popug, yesterday),
			taskAssigned(t, t2, popug, yesterday.Add(time.Minute)),
			taskCompleted(t, t1, popug, yesterday.Add(time.Hour)),
			taskAssigned(t, t3, popug, today),
			taskAssigned(t, t2, popug, today.Add(time.Minute)), // a shuffle drew the same popug
			taskCompleted(t, t2, popug, today.Add(time.Hour)),
			taskAssigned(t, t4, popug, today.Add(2*time.Hour)),
			taskAssigned(t, t4, other, today.Add(3*time.Hour)),
		)
		l := h.mustConsistent(t)
		stored := l.ByAccount(popug)
		if len(stored) != 7 {
			t.Fatalf("%d entries, want 7", len(stored))
		}
		var want []uuid.UUID
		for i := len(stored) - 1; i >= 0; i-- {
			want = append(want, stored[i].ID)
		}

		var all []accounting.Entry
		req := page.Request{First: 3}
		for i, wantLen := range []int{3, 3, 1} {
			p, err := h.svc.Entries(ctx, as(popug, identity.Worker), popug, nil, req)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != wantLen || len(p.Keys) != wantLen || p.TotalCount != 7 || p.HasNext != (i < 2) || p.HasPrev != (i > 0) {
				t.Fatalf("page %d: %d items, total %d, next %v, prev %v", i+1, len(p.Items), p.TotalCount, p.HasNext, p.HasPrev)
			}
			for j := 1; j < len(p.Keys); j++ {
				if p.Keys[j] >= p.Keys[j-1] {
					t.Errorf("page %d: keys %v not descending", i+1, p.Keys)
				}
			}
			all = append(all, p.Items...)
			req.After = p.Keys[len(p.Keys)-1]
		}
		var got []uuid.UUID
		for _, e := range all {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("entries across pages = %v, want newest first %v", got, want)
		}
		// balanceAfter chains across pages, down to the first entry and up to the balance.
		if all[0].BalanceAfter != h.mustBalance(t, popug) {
			t.Errorf("newest balanceAfter %v ≠ balance %v", all[0].BalanceAfter, h.mustBalance(t, popug))
		}
		for i := 0; i+1 < len(all); i++ {
			if all[i].BalanceAfter-all[i].Amount != all[i+1].BalanceAfter {
				t.Errorf("entry %d: %s does not follow %s", i, describeEntry(all[i]), describeEntry(all[i+1]))
			}
		}
		if last := all[len(all)-1]; last.BalanceAfter != last.Amount {
			t.Errorf("oldest entry %s does not start from 0.00", describeEntry(last))
		}
		wantTypes := []accounting.EntryType{accounting.Fee, accounting.Reward, accounting.Fee, accounting.Fee, accounting.Reward, accounting.Fee, accounting.Fee}
		var gotTypes []accounting.EntryType
		for _, e := range all {
			gotTypes = append(gotTypes, e.Type)
		}
		if !slices.Equal(gotTypes, wantTypes) {
			t.Errorf("types = %v, want %v", gotTypes, wantTypes)
		}

		// One day, two per page.
		day := calendar.DateOf(yesterday, time.UTC)
		req = page.Request{First: 2}
		var dayIDs []uuid.UUID
		for i := 0; ; i++ {
			p, err := h.svc.Entries(ctx, actor(identity.Accountant), popug, &day, req)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalCount != 3 {
				t.Errorf("total of %s = %d, want 3", day, p.TotalCount)
			}
			for _, e := range p.Items {
				if e.Day != day {
					t.Errorf("entry of %s in the log of %s", e.Day, day)
				}
				dayIDs = append(dayIDs, e.ID)
			}
			if !p.HasNext {
				break
			}
			req.After = p.Keys[len(p.Keys)-1]
		}
		if !slices.Equal(dayIDs, want[4:]) {
			t.Errorf("log of %s = %v, want %v", day, dayIDs, want[4:])
		}
		empty := day.AddDays(-1)
		p, err := h.svc.Entries(ctx, actor(identity.Admin), popug, &empty, pageAll)
		if err != nil || len(p.Items) != 0 || p.TotalCount != 0 || p.HasNext {
			t.Errorf("log of a day without entries = %+v, %v", p, err)
		}
	})
}

// TestDaysOnePerDateOldestFirst: R-ACC-9 — an account's days in a range, one element per date
// oldest first, days without entries included at zero; earned sums FEE and REWARD entries,
// paidOut the payouts of the day's close (R-ACC-8); ranges are bounded.
func TestDaysOnePerDateOldestFirst(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		popug, someone := uuid.New(), uuid.New()
		t1, t2, t3 := uuid.New(), uuid.New(), uuid.New()
		d20 := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
		d22 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
		h.clock.Set(d20.Add(12 * time.Hour))
		h.deliver(t,
			taskAssigned(t, t1, popug, d20),
			taskCompleted(t, t1, popug, d20.Add(time.Hour)),
			taskAssigned(t, t2, someone, d20),
			taskCompleted(t, t2, popug, d20.Add(2*time.Hour)), // a completion credits whoever completed
		)
		balance20 := h.mustBalance(t, popug)
		if balance20 <= 0 {
			t.Fatalf("balance on the 20th = %v, want positive to be paid out", balance20)
		}
		res, err := h.svc.CloseNow(ctx, actor(identity.Accountant))
		if err != nil {
			t.Fatal(err)
		}
		if res.Day != mustDate(t, "2026-11-20") || res.PaidAccounts != 1 || res.TotalPaid != balance20 {
			t.Fatalf("close = %+v, want %v paid to one account on the 20th", res, balance20)
		}
		h.clock.Set(d22)
		h.deliver(t, taskAssigned(t, t3, popug, d22))

		l := h.mustConsistent(t)
		earned, paid := map[string]money.Cents{}, map[string]money.Cents{}
		for _, e := range l.ByAccount(popug) {
			if e.Type == "PAYOUT" {
				paid[e.Day] -= money.Cents(e.Amount)
			} else {
				earned[e.Day] += money.Cents(e.Amount)
			}
		}
		p1, p2, p3 := h.mustPrice(t, t1), h.mustPrice(t, t2), h.mustPrice(t, t3)
		if earned["2026-11-20"] != p1.Reward-p1.Fee+p2.Reward || paid["2026-11-20"] != balance20 || earned["2026-11-22"] != -p3.Fee {
			t.Fatalf("ledger by day: earned %v, paid %v", earned, paid)
		}

		from, to := mustDate(t, "2026-11-18"), mustDate(t, "2026-11-23")
		days, err := h.svc.Days(ctx, as(popug, identity.Worker), popug, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(days) != 6 {
			t.Fatalf("%d days, want 6: %+v", len(days), days)
		}
		for i, d := range days {
			date := from.AddDays(i)
			want := accounting.BillingDay{Date: date, Earned: earned[date.String()], PaidOut: paid[date.String()]}
			if d != want {
				t.Errorf("day %d = %+v, want %+v", i, d, want)
			}
		}
		if days[2].PaidOut != balance20 || days[0] != (accounting.BillingDay{Date: from}) || days[3] != (accounting.BillingDay{Date: from.AddDays(3)}) {
			t.Errorf("days = %+v", days)
		}
		// The payout reads as one in the audit log.
		log := h.mustEntries(t, popug)
		if len(log) != 5 || log[1].Type != accounting.Payout || log[1].Description != "Payout for 2026-11-20" ||
			log[1].Amount != -balance20 || log[1].BalanceAfter != 0 || log[1].TaskID != nil {
			t.Errorf("audit log = %+v", log)
		}

		// Ranges: never backwards, at most MaxRangeDays.
		_, err = h.svc.Days(ctx, as(popug, identity.Worker), popug, to, from)
		mustErr(t, err, errs.Invalid, "to")
		_, err = h.svc.Days(ctx, as(popug, identity.Worker), popug, from, from.AddDays(accounting.MaxRangeDays))
		mustErr(t, err, errs.Invalid, "to")
		long, err := h.svc.Days(ctx, actor(identity.Admin), popug, from, from.AddDays(accounting.MaxRangeDays-1))
		if err != nil || len(long) != accounting.MaxRangeDays || long[0].Date != from || long[len(long)-1].Date != from.AddDays(accounting.MaxRangeDays-1) {
			t.Fatalf("the longest range: %d days, %v", len(long), err)
		}
		for i := 1; i < len(long); i++ {
			if long[i].Date != long[i-1].Date.AddDays(1) {
				t.Fatalf("day %d is %s after %s", i, long[i].Date, long[i-1].Date)
			}
		}
		if long[2].PaidOut != balance20 || long[4].Earned != -p3.Fee {
			t.Errorf("the longest range lost figures: %+v %+v", long[2], long[4])
		}
	})
}

// TestManagementEarnings: R-ACC-6, R-ACC-9 — management earns, per day, −(sum of the day's FEE
// and REWARD entries) = fees − rewards; payouts do not count; ADMIN and ACCOUNTANT only.
func TestManagementEarnings(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s := newScenario(t, 3, 12, 21)
		// Every popug also completes a task of their own on the 22nd: positive balances to pay.
		for _, a := range s.Accounts {
			task := uuid.New()
			e := taskCompleted(t, task, a, start.Add(time.Minute))
			s.Tasks = append(s.Tasks, task)
			s.Events = append(s.Events, e)
			s.Money = append(s.Money, moneyEvent{EventID: e.ID, Task: task, Account: a, Type: "REWARD", At: e.Time})
		}
		h.deliver(t, s.Events...)
		res, err := h.svc.CloseNow(ctx, actor(identity.Admin))
		if err != nil {
			t.Fatal(err)
		}
		if res.PaidAccounts == 0 || res.TotalPaid <= 0 {
			t.Fatalf("close = %+v, want payouts (which management earnings must ignore)", res)
		}

		// Expected, from the ledger as stored …
		l := h.mustConsistent(t)
		fromLedger := map[string]money.Cents{}
		for _, e := range l.Entries {
			if e.Type == "FEE" || e.Type == "REWARD" {
				fromLedger[e.Day] -= money.Cents(e.Amount)
			}
		}
		// … and from the events and prices: fees − rewards by the events' days.
		prices := h.mustPrices(t)
		fromEvents := map[string]money.Cents{}
		for _, m := range s.Money {
			day := calendar.DateOf(m.At, h.loc).String()
			if m.Type == "FEE" {
				fromEvents[day] += prices[m.Task].Fee
			} else {
				fromEvents[day] -= prices[m.Task].Reward
			}
		}
		from, to := mustDate(t, "2026-11-19"), mustDate(t, "2026-11-26")
		for _, role := range []identity.Role{identity.Admin, identity.Accountant} {
			got, err := h.svc.ManagementEarnings(ctx, actor(role), from, to)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 8 {
				t.Fatalf("%d days, want 8", len(got))
			}
			var nonzero int
			for i, d := range got {
				date := from.AddDays(i)
				if d.Date != date || d.Earnings != fromLedger[date.String()] || d.Earnings != fromEvents[date.String()] {
					t.Errorf("%s: %+v, want %s %v (ledger) = %v (events)", role, d, date, fromLedger[date.String()], fromEvents[date.String()])
				}
				if d.Earnings != 0 {
					nonzero++
				}
			}
			if nonzero < 2 || got[0].Earnings != 0 || got[7].Earnings != 0 {
				t.Errorf("earnings %+v: want figures on several days and zero days at both ends", got)
			}
		}
		for _, role := range []identity.Role{identity.Worker, identity.Manager} {
			_, err := h.svc.ManagementEarnings(ctx, actor(role), from, to)
			mustErr(t, err, errs.Forbidden, "")
		}
		_, err = h.svc.ManagementEarnings(ctx, identity.Actor{Role: identity.Admin}, from, to)
		mustErr(t, err, errs.Unauthenticated, "")
		_, err = h.svc.ManagementEarnings(ctx, actor(identity.Admin), to, from)
		mustErr(t, err, errs.Invalid, "to")
		_, err = h.svc.ManagementEarnings(ctx, actor(identity.Admin), from, from.AddDays(accounting.MaxRangeDays))
		mustErr(t, err, errs.Invalid, "to")
		long, err := h.svc.ManagementEarnings(ctx, actor(identity.Admin), from.AddDays(-accounting.MaxRangeDays+8), to)
		if err != nil || len(long) != accounting.MaxRangeDays || long[len(long)-1].Date != to {
			t.Fatalf("the longest range: %d days, %v", len(long), err)
		}
		var sumLong, sumShort money.Cents
		for _, d := range long {
			sumLong += d.Earnings
		}
		for _, e := range fromLedger {
			sumShort += e
		}
		if sumLong != sumShort {
			t.Errorf("the longest range sums to %v, want %v", sumLong, sumShort)
		}
	})
}

// TestAccountsList: R-ACC-5 — ADMIN and ACCOUNTANT page through every billing account in the
// order accounting heard of them, each with its balance and what it earned today.
func TestAccountsList(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		a1, a2, a3, a4, a5 := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
		t1, t2, t3 := uuid.New(), uuid.New(), uuid.New()
		h.deliver(t,
			accountCreated(t, a1, "first_popug", identity.Worker, start),
			taskAssigned(t, t1, a2, start),                     // heard of a2 from a task
			taskCompleted(t, t2, a3, start.Add(-24*time.Hour)), // a3 earned yesterday, not today
			accountCreated(t, a4, "fourth_popug", identity.Manager, start),
			accountEvent(t, contract.AccountUpdated, a5, "fifth_popug", identity.Accountant, 2, start),
			taskCompleted(t, t3, a2, start.Add(time.Hour)),
		)
		p1, p2, p3 := h.mustPrice(t, t1), h.mustPrice(t, t2), h.mustPrice(t, t3)
		want := []accounting.BillingAccount{
			{AccountID: a1},
			{AccountID: a2, Balance: p3.Reward - p1.Fee, EarnedToday: p3.Reward - p1.Fee},
			{AccountID: a3, Balance: p2.Reward},
			{AccountID: a4},
			{AccountID: a5},
		}
		var got []accounting.BillingAccount
		req := page.Request{First: 2}
		for i := 0; ; i++ {
			p, err := h.svc.Accounts(ctx, actor(identity.Accountant), req)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalCount != 5 || p.HasPrev != (i > 0) || len(p.Items) > 2 {
				t.Errorf("page %d: total %d, prev %v, %d items", i+1, p.TotalCount, p.HasPrev, len(p.Items))
			}
			got = append(got, p.Items...)
			if !p.HasNext {
				break
			}
			req.After = p.Keys[len(p.Keys)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("accounts = %+v\nwant       %+v", got, want)
		}
		admin, err := h.svc.Accounts(ctx, actor(identity.Admin), pageAll)
		if err != nil || !slices.Equal(admin.Items, want) || admin.HasNext {
			t.Errorf("as admin: %+v, %v", admin, err)
		}
		for _, role := range []identity.Role{identity.Worker, identity.Manager} {
			_, err := h.svc.Accounts(ctx, actor(role), pageAll)
			mustErr(t, err, errs.Forbidden, "")
		}
		_, err = h.svc.Accounts(ctx, identity.Actor{Role: identity.Admin}, pageAll)
		mustErr(t, err, errs.Unauthenticated, "")
		h.mustConsistent(t)
	})
}

// TestPricesInOneQuery: R-LIVE-2 — the prices of many tasks come in the order asked, an
// unpriced task's as NOT_FOUND, exactly as drawn (R-ACC-1).
func TestPricesInOneQuery(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		popug, t1, t2, unpriced := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		h.deliver(t, accountCreated(t, popug, "priced_popug", identity.Worker, start), taskAssigned(t, t1, popug, start), taskAssigned(t, t2, popug, start))
		got, errList := h.svc.Prices(context.Background(), []uuid.UUID{t2, unpriced, t1})
		if errList[0] != nil || errList[2] != nil {
			t.Fatalf("errors %v", errList)
		}
		mustErr(t, errList[1], errs.NotFound, "")
		if got[0] != h.mustPrice(t, t2) || got[2] != h.mustPrice(t, t1) {
			t.Fatalf("prices %+v, want %+v and %+v", got, h.mustPrice(t, t2), h.mustPrice(t, t1))
		}
		if got[0].Fee < money.Dollars(accounting.MinFee) || got[0].Reward < money.Dollars(accounting.MinReward) {
			t.Fatalf("price %+v outside R-ACC-1", got[0])
		}
	})
}
