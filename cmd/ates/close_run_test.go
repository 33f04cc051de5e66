package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Asia/Tokyo without the system's zoneinfo

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/mail/mailtest"
	"github.com/uberpopug/ates/services/money"
)

// Tests of the end of day through the real `ates` process (R-ACC-8, R-OPS-3): closeBillingDay
// over GraphQL after real work, payment emails at a real SMTP server (ATES_SMTP_URL) or in the
// mailbox folder, and the scheduled close's choice of day.

// TestCloseScheduleTick: the scheduled close closes the day of the tick the schedule meant — in
// ATES_TIMEZONE, or the expression's own CRON_TZ — also when the job runs late (a machine
// suspended over midnight) or a moment early (a wall-clock adjustment).
func TestCloseScheduleTick(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hour, minute int, ns int) time.Time {
		return time.Date(2026, 11, day, hour, minute, 0, ns, tokyo)
	}
	for _, tc := range []struct {
		expr string
		loc  *time.Location
		now  time.Time
		tick time.Time
		day  string // the day closed: the tick's minute before, in the location
	}{
		{"0 0 * * *", tokyo, at(23, 0, 0, 2_000_000), at(23, 0, 0, 0), "2026-11-22"},                           // on time
		{"0 0 * * *", tokyo, at(23, 8, 30, 0), at(23, 0, 0, 0), "2026-11-22"},                                  // 8.5 h late
		{"0 0 * * *", tokyo, at(22, 23, 59, 999_000_000).Add(59 * time.Second), at(23, 0, 0, 0), "2026-11-22"}, // 1 ms early
		{"0 18 * * *", tokyo, at(22, 18, 0, 1000), at(22, 18, 0, 0), "2026-11-22"},                             // an 18:00 schedule
		{"0 18 * * *", tokyo, at(23, 9, 0, 0), at(22, 18, 0, 0), "2026-11-22"},                                 // ran late, next morning
		{"0 0 * * 1", tokyo, at(25, 3, 0, 0), at(23, 0, 0, 0), "2026-11-22"},                                   // weekly (Mondays)
		{"CRON_TZ=Asia/Tokyo 0 0 * * *", time.UTC, at(23, 0, 0, 5), at(23, 0, 0, 0), "2026-11-22"},
		{"0 0 * * *", time.UTC, at(23, 9, 0, 7), at(23, 9, 0, 0), "2026-11-22"}, // midnight UTC = 09:00 Tokyo
	} {
		s, err := closeSchedule(tc.expr, tc.loc)
		if err != nil {
			t.Fatalf("closeSchedule(%q): %v", tc.expr, err)
		}
		tick := tickOf(s, tc.now)
		if !tick.Equal(tc.tick) {
			t.Errorf("%q in %s at %s: tick %s, want %s", tc.expr, tc.loc, tc.now, tick, tc.tick)
		}
		// As accounting's ClosedDay does, in ATES_TIMEZONE.
		if closed := calendar.DateOf(tick.Add(-time.Minute), tc.loc).String(); closed != tc.day {
			t.Errorf("%q in %s at %s closes %s, want %s", tc.expr, tc.loc, tc.now, closed, tc.day)
		}
	}
	if _, err := closeSchedule("61 * * * *", time.UTC); err == nil {
		t.Error("closeSchedule accepted minute 61")
	}
}

// TestLoadConfigRefusesUnusableSMTPURL: an ATES_SMTP_URL the mailer cannot use is refused at
// start — not discovered by the worker, whose end-of-day duties would then not run (R-ACC-8).
func TestLoadConfigRefusesUnusableSMTPURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"smtp://mail:1025", "smtp://u:p@mail:587?tls=starttls", "smtps://mail", "smtp://mail"} {
		if _, err := LoadConfig([]string{"ATES_SMTP_URL=" + u}); err != nil {
			t.Errorf("ATES_SMTP_URL=%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"smtp://mail:1025?tls=startls", "smtps://mail?tls=starttls", "smtp://mail:70000", "smtp://mail:0", "http://mail:25"} {
		_, err := LoadConfig([]string{"ATES_SMTP_URL=" + u})
		if err == nil || !strings.Contains(err.Error(), "ATES_SMTP_URL") {
			t.Errorf("ATES_SMTP_URL=%s: %v, want an error naming ATES_SMTP_URL", u, err)
		}
	}
}

// closeAccount is a billing account as the admin reads it.
type closeAccount struct {
	Balance string
	Entries struct {
		TotalCount int
		Edges      []struct {
			Node struct {
				Type, Amount, BalanceAfter, Description, Day string
				Task                                         *struct{ ID string }
			}
		}
	}
	Payments []struct {
		Amount, Day string
		EmailSent   bool
	}
}

// closeBillingAccount reads an account's balance, newest entry and payments.
func closeBillingAccount(t *testing.T, base, token, id string) closeAccount {
	t.Helper()
	var r struct{ BillingAccount closeAccount }
	mustDo(t, base, token, `query($id:ID!){billingAccount(accountId:$id){balance
		entries(first:1){totalCount edges{node{type amount balanceAfter description day task{id}}}}
		payments(first:10){amount day emailSent}}}`, map[string]any{"id": id}, &r)
	return r.BillingAccount
}

// closeCompleteMine has p complete every open task myTasks shows them; it returns how many.
func closeCompleteMine(t *testing.T, base string, p *popug) int {
	t.Helper()
	var r struct {
		MyTasks struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	mustDo(t, base, p.Token, `{myTasks(status:OPEN,first:100){edges{node{id}}}}`, nil, &r)
	for _, e := range r.MyTasks.Edges {
		mustDo(t, base, p.Token, `mutation($id:ID!){completeTask(id:$id){status}}`, map[string]any{"id": e.Node.ID}, nil)
	}
	return len(r.MyTasks.Edges)
}

// closeWork is the work a test did: per popug, its assignments (fees) and completions (rewards).
type closeWork struct {
	fees, rewards map[string]int
	n             int
}

// createTasks creates tasks as the admin until done says so (at most 60); the earners complete
// every task they get at once, so their balances never go negative (a reward is never below a
// fee, R-ACC-1).
func (w *closeWork) createTasks(t *testing.T, base, admin string, earners []*popug, done func() bool) {
	t.Helper()
	for !done() {
		if w.n++; w.n > 60 {
			t.Fatalf("60 tasks created and still not done: %v", w.fees)
		}
		task := mustCreateTask(t, base, admin, 9000+w.n)
		w.fees[task.Assignee.ID]++
		for _, p := range earners {
			if p.ID == task.Assignee.ID {
				w.rewards[p.ID] += closeCompleteMine(t, base, p)
			}
		}
	}
}

// waitLedger waits until accounting has applied every fee and reward of the work.
func (w *closeWork) waitLedger(t *testing.T, base, admin string, popugs ...*popug) {
	t.Helper()
	for _, p := range popugs {
		want := w.fees[p.ID] + w.rewards[p.ID]
		waitFor(t, fmt.Sprintf("%s's %d entries", p.Name, want), func() (bool, string) {
			got := closeBillingAccount(t, base, admin, p.ID).Entries.TotalCount
			return got == want, fmt.Sprintf("%d entries", got)
		})
	}
}

// waitStartupClose waits until the worker's catch-up close of yesterday has run (it runs at
// start): otherwise it could pay the test's balances with yesterday's day.
func waitStartupClose(t *testing.T, p *process) {
	t.Helper()
	waitFor(t, "the catch-up close at start", func() (bool, string) {
		return strings.Contains(p.stderr.String(), `msg="billing day closed"`), p.stderr.String()
	})
}

// TestRunCloseBillingDay: R-ACC-8 end to end on the embedded default with ATES_SMTP_URL pointing
// at an SMTP server in the test. After real work — popugs sign up, tasks are created, some
// completed — an admin's closeBillingDay pays every positive balance: the account is at 0.00
// with a PAYOUT entry of the whole balance on the day, BillingDay.paidOut shows it, negative and
// zero balances are untouched; a second close right after pays nobody; every paid popug
// receives exactly one email with its amount at the SMTP server, and its Payment shows
// emailSent. Only ADMIN and ACCOUNTANT may close.
func TestRunCloseBillingDay(t *testing.T) {
	srv := mailtest.MustStart(t)
	p, base := MustStart(t, []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(),
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
		"ATES_SMTP_URL=" + srv.URL(), "ATES_MAIL_FROM=aTES <ates@uberpopug.local>",
		"ATES_CLOSE_SCHEDULE=0 0 1 1 *", // the test closes by hand
	})
	waitStartupClose(t, p)
	admin, _ := mustLogin(t, base, "boss", "boss-beak-print")

	kesha, gosha := mustSignUp(t, base, "kesha"), mustSignUp(t, base, "gosha")
	earners := []*popug{kesha, gosha}
	w := &closeWork{fees: map[string]int{}, rewards: map[string]int{}}
	w.createTasks(t, base, admin, earners, func() bool { return w.fees[kesha.ID] >= 2 && w.fees[gosha.ID] >= 2 })
	rio := mustSignUp(t, base, "rio") // gets a task and never completes it: negative
	w.createTasks(t, base, admin, earners, func() bool { return w.fees[rio.ID] >= 1 })
	pasha := mustSignUp(t, base, "pasha") // no task: 0.00
	w.waitLedger(t, base, admin, kesha, gosha, rio, pasha)

	before := map[string]money.Cents{}
	for _, q := range []*popug{kesha, gosha, rio, pasha} {
		before[q.ID] = cents(t, closeBillingAccount(t, base, admin, q.ID).Balance)
	}
	if before[kesha.ID] <= 0 || before[gosha.ID] <= 0 || before[rio.ID] >= 0 || before[pasha.ID] != 0 {
		t.Fatalf("balances before the close: kesha %v, gosha %v, rio %v, pasha %v; want +, +, −, 0",
			before[kesha.ID], before[gosha.ID], before[rio.ID], before[pasha.ID])
	}
	rioEntries := closeBillingAccount(t, base, admin, rio.ID).Entries.TotalCount

	// Only ADMIN and ACCOUNTANT close.
	const closeQuery = `mutation{closeBillingDay{day paidAccounts totalPaid}}`
	mustFail(t, base, kesha.Token, "FORBIDDEN", closeQuery, nil)
	mustFail(t, base, "", "UNAUTHENTICATED", closeQuery, nil)

	type closed struct {
		CloseBillingDay struct {
			Day          string
			PaidAccounts int
			TotalPaid    string
		}
	}
	todayBefore := calendar.DateOf(time.Now(), time.UTC).String()
	var c closed
	mustDo(t, base, admin, closeQuery, nil, &c)
	day := c.CloseBillingDay.Day
	if day != todayBefore && day != calendar.DateOf(time.Now(), time.UTC).String() {
		t.Errorf("closed day %s, want today (UTC) %s", day, todayBefore)
	}
	total := before[kesha.ID] + before[gosha.ID]
	if c.CloseBillingDay.PaidAccounts != 2 || cents(t, c.CloseBillingDay.TotalPaid) != total {
		t.Fatalf("closeBillingDay = %+v, want kesha and gosha paid %v", c.CloseBillingDay, total)
	}

	for _, q := range earners {
		a := closeBillingAccount(t, base, admin, q.ID)
		if a.Balance != "0.00" || len(a.Entries.Edges) != 1 {
			t.Fatalf("%s after the close: %+v, want 0.00 and a PAYOUT entry", q.Name, a)
		}
		e := a.Entries.Edges[0].Node
		if e.Type != "PAYOUT" || cents(t, e.Amount) != -before[q.ID] || e.BalanceAfter != "0.00" || e.Day != day ||
			e.Description != "Payout for "+day || e.Task != nil || a.Entries.TotalCount != w.fees[q.ID]+w.rewards[q.ID]+1 {
			t.Errorf("%s's newest entry %+v of %d, want a PAYOUT of −%v to 0.00 on %s", q.Name, e, a.Entries.TotalCount, before[q.ID], day)
		}
		if len(a.Payments) != 1 || cents(t, a.Payments[0].Amount) != before[q.ID] || a.Payments[0].Day != day {
			t.Errorf("%s's payments %+v, want one of %v on %s", q.Name, a.Payments, before[q.ID], day)
		}
		// R-ACC-9: the day shows what was earned and what was paid out.
		var d struct {
			MyBillingAccount struct {
				Days []struct{ Date, Earned, PaidOut string }
			}
		}
		mustDo(t, base, q.Token, `query($d:Date!){myBillingAccount{days(from:$d,to:$d){date earned paidOut}}}`, map[string]any{"d": day}, &d)
		if ds := d.MyBillingAccount.Days; len(ds) != 1 || ds[0].Date != day || cents(t, ds[0].PaidOut) != before[q.ID] ||
			cents(t, ds[0].Earned) != before[q.ID] {
			t.Errorf("%s's day %s = %+v, want %v earned and paid out", q.Name, day, ds, before[q.ID])
		}
	}
	for _, q := range []*popug{rio, pasha} {
		a := closeBillingAccount(t, base, admin, q.ID)
		if cents(t, a.Balance) != before[q.ID] || len(a.Payments) != 0 {
			t.Errorf("%s after the close: %+v, want %v untouched and no payment", q.Name, a, before[q.ID])
		}
	}
	if n := closeBillingAccount(t, base, admin, rio.ID).Entries.TotalCount; n != rioEntries {
		t.Errorf("rio has %d entries after the close, %d before", n, rioEntries)
	}

	// A second close right after pays nobody.
	mustDo(t, base, admin, closeQuery, nil, &c)
	if c.CloseBillingDay.PaidAccounts != 0 || c.CloseBillingDay.TotalPaid != "0.00" {
		t.Errorf("second closeBillingDay = %+v, want nobody paid", c.CloseBillingDay)
	}

	// Every paid popug receives one email with its amount; the payment shows it sent.
	msgs := srv.WaitMessages(t, 2, 30*time.Second)
	for _, q := range earners {
		waitWithin(t, 15*time.Second, q.Name+"'s payment to show emailSent", func() (bool, string) {
			var r struct {
				MyBillingAccount struct {
					Payments []struct{ EmailSent bool }
				}
			}
			mustDo(t, base, q.Token, `{myBillingAccount{payments{emailSent}}}`, nil, &r)
			ps := r.MyBillingAccount.Payments
			return len(ps) == 1 && ps[0].EmailSent, fmt.Sprintf("%+v", r)
		})
	}
	// No second email comes: a popug paid later gets their email from a later pass of the
	// mailer, which would have sent a second one for kesha or gosha before it (older jobs go
	// first) had their jobs not been marked sent.
	tiko := mustSignUp(t, base, "tiko")
	w.createTasks(t, base, admin, []*popug{tiko}, func() bool { return w.rewards[tiko.ID] >= 1 })
	w.waitLedger(t, base, admin, tiko)
	mustDo(t, base, admin, closeQuery, nil, &c)
	if c.CloseBillingDay.PaidAccounts != 1 {
		t.Fatalf("closeBillingDay after tiko earned = %+v, want tiko paid", c.CloseBillingDay)
	}
	srv.WaitMessages(t, 3, 30*time.Second)
	msgs = srv.Messages()
	byTo := map[string][]mailtest.Parsed{}
	for _, m := range msgs {
		parsed, err := mailtest.Parse(m.Data)
		if err != nil {
			t.Fatalf("%v\n%s", err, m.Data)
		}
		byTo[parsed.To[0].Address] = append(byTo[parsed.To[0].Address], parsed)
	}
	if len(msgs) != 3 || len(byTo) != 3 || len(byTo["tiko@uberpopug.com"]) != 1 {
		t.Fatalf("the SMTP server received %d messages for %d recipients, want one each for kesha, gosha and tiko", len(msgs), len(byTo))
	}
	for _, q := range earners {
		ms := byTo[q.Name+"@uberpopug.com"]
		if len(ms) != 1 {
			t.Errorf("%s received %d emails, want 1", q.Name, len(ms))
			continue
		}
		m, want := ms[0], "$"+before[q.ID].String()
		if m.To[0].Name != "Popug "+q.Name || m.From.Address != "ates@uberpopug.local" ||
			!strings.Contains(m.Text, "paid out: "+want+".") || !strings.Contains(m.Text, day) ||
			!strings.Contains(m.HTML, "<strong>"+want+"</strong>") || !strings.Contains(m.Subject, want) {
			t.Errorf("%s's email: to %v, subject %q, text %q; want %s on %s", q.Name, m.To, m.Subject, m.Text, want, day)
		}
	}

	// An accountant may close too.
	acc := mustCreatePopug(t, base, admin, "counter", "ACCOUNTANT")
	mustDo(t, base, acc.Token, closeQuery, nil, &c)
	if c.CloseBillingDay.PaidAccounts != 0 {
		t.Errorf("the accountant's close = %+v, want nobody paid", c.CloseBillingDay)
	}
}

// TestRunCloseWritesMailbox: without ATES_SMTP_URL (the embedded default) a payment email is a
// parseable .eml in ATES_DATA_DIR/mailbox.
func TestRunCloseWritesMailbox(t *testing.T) {
	dir := t.TempDir()
	p, base := MustStart(t, []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print", "ATES_CLOSE_SCHEDULE=0 0 1 1 *",
	})
	waitStartupClose(t, p)
	admin, _ := mustLogin(t, base, "boss", "boss-beak-print")
	kiwi := mustSignUp(t, base, "kiwi")
	w := &closeWork{fees: map[string]int{}, rewards: map[string]int{}}
	w.createTasks(t, base, admin, []*popug{kiwi}, func() bool { return w.fees[kiwi.ID] >= 2 })
	w.waitLedger(t, base, admin, kiwi)
	balance := cents(t, closeBillingAccount(t, base, admin, kiwi.ID).Balance)
	if balance <= 0 {
		t.Fatalf("kiwi's balance %v, want positive", balance)
	}
	mustDo(t, base, admin, `mutation{closeBillingDay{paidAccounts}}`, nil, nil)

	mailbox := filepath.Join(dir, "mailbox")
	var files []string
	waitWithin(t, 15*time.Second, "an .eml file in "+mailbox, func() (bool, string) {
		files, _ = filepath.Glob(filepath.Join(mailbox, "*.eml"))
		return len(files) > 0, "none"
	})
	if len(files) != 1 {
		t.Fatalf("%d .eml files in %s, want kiwi's one", len(files), mailbox)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	m, err := mailtest.Parse(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if m.To[0].Address != "kiwi@uberpopug.com" || !strings.Contains(m.Text, "paid out: $"+balance.String()+".") {
		t.Errorf("mailbox email to %v: %q, want kiwi paid %v", m.To, m.Text, balance)
	}
}
