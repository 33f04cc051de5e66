package accounting_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/mail"
	"github.com/uberpopug/ates/services/mail/mailtest"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// Tests of the payment emails (R-ACC-8): what they say, and that each paid popug is emailed at
// least once after the payout commits — exactly once here — through a real SMTP server that may
// refuse for a while, with a job retried (never dropped) while the popug's address is unknown,
// and without two mailers sending one job twice.

// TestPaymentEmail: the message names the amount in dollars with two decimals and the day, in
// a plain-text and an HTML body; the popug's name is HTML-escaped.
func TestPaymentEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		amount money.Cents
		want   string
	}{
		{"Kesha", 3500, "$35.00"},
		{"", 5, "$0.05"},
		{"Gosha", 123456, "$1234.56"},
		{`<Rio & "Co">`, 1001, "$10.01"},
	} {
		m := accounting.PaymentEmail("kesha@uberpopug.com", tc.name, tc.amount, "2026-11-22")
		if m.To != "kesha@uberpopug.com" || m.ToName != tc.name {
			t.Errorf("recipient %q <%s>, want %q <kesha@uberpopug.com>", m.ToName, m.To, tc.name)
		}
		if !strings.Contains(m.Subject, tc.want) || !strings.Contains(m.Subject, "2026-11-22") {
			t.Errorf("subject %q, want the amount %s and the day", m.Subject, tc.want)
		}
		if !strings.Contains(m.Text, "paid out: "+tc.want+".") || !strings.Contains(m.Text, "2026-11-22") {
			t.Errorf("text %q, want the amount %s and the day", m.Text, tc.want)
		}
		if !strings.Contains(m.HTML, "<strong>"+tc.want+"</strong>") || !strings.Contains(m.HTML, "<strong>2026-11-22</strong>") {
			t.Errorf("HTML %q, want the amount %s and the day", m.HTML, tc.want)
		}
		greeting := "Hello,"
		if tc.name != "" {
			greeting = "Hello " + tc.name + ","
		}
		if !strings.HasPrefix(m.Text, greeting) {
			t.Errorf("text %q, want it to start %q", m.Text, greeting)
		}
		if strings.ContainsAny(tc.name, "<&") && strings.Contains(m.HTML, tc.name) {
			t.Errorf("HTML %q carries the name unescaped", m.HTML)
		}
	}
	if m := accounting.PaymentEmail("x@y.z", `<Rio & "Co">`, 1, "d"); !strings.Contains(m.HTML, "&lt;Rio &amp; &#34;Co&#34;&gt;") {
		t.Errorf("HTML %q, want the name escaped", m.HTML)
	}
}

// TestEmailBackoff: a refused email is retried after 1 s, doubling up to five minutes, for as
// long as it takes.
func TestEmailBackoff(t *testing.T) {
	t.Parallel()
	for attempts, want := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second,
		10: 5 * time.Minute, 11: 5 * time.Minute, 1000: 5 * time.Minute,
	} {
		if got := accounting.EmailBackoff(attempts); got != want {
			t.Errorf("EmailBackoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}

// mustSMTPSender sends through the test server.
func mustSMTPSender(tb testing.TB, srv *mailtest.Server) *mail.SMTP {
	tb.Helper()
	s, err := mail.NewSMTP(srv.URL(), "aTES <ates@uberpopug.local>")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// jobRow is one stored email job.
type jobRow struct {
	Attempts  int
	Next      time.Time
	LastError string
	Sent      bool
}

func (h *harness) mustJob(tb testing.TB, account uuid.UUID) jobRow {
	tb.Helper()
	var j jobRow
	if err := h.db.SQL.QueryRow(h.q(`SELECT email_attempts, email_next_attempt_at, email_last_error, email_sent FROM payments WHERE account_id = $1`),
		account.String()).Scan(&j.Attempts, &j.Next, &j.LastError, &j.Sent); err != nil {
		tb.Fatalf("email job of %s: %v", account, err)
	}
	return j
}

// mustEmailSent reports the payment's emailSent as the service shows it.
func (h *harness) mustEmailSent(tb testing.TB, account uuid.UUID) bool {
	tb.Helper()
	ps, err := h.svc.Payments(context.Background(), as(account, identity.Worker), account, 10)
	if err != nil || len(ps) != 1 {
		tb.Fatalf("payments of %s: %+v, %v; want one", account, ps, err)
	}
	return ps[0].EmailSent
}

// mustSend runs SendDueEmails and checks how many it sent.
func (h *harness) mustSend(tb testing.TB, sender mail.Sender, want int) {
	tb.Helper()
	n, err := h.svc.SendDueEmails(context.Background(), sender)
	if err != nil {
		tb.Fatalf("SendDueEmails: %v", err)
	}
	if n != want {
		tb.Fatalf("SendDueEmails sent %d, want %d", n, want)
	}
}

// received takes apart what the server accepted, by recipient address.
func received(tb testing.TB, srv *mailtest.Server) map[string][]mailtest.Parsed {
	tb.Helper()
	out := map[string][]mailtest.Parsed{}
	for _, m := range srv.Messages() {
		p, err := mailtest.Parse(m.Data)
		if err != nil {
			tb.Fatalf("%v\n%s", err, m.Data)
		}
		if len(p.To) != 1 || len(m.To) != 1 || p.To[0].Address != m.To[0] {
			tb.Fatalf("message to %v sent to %v", p.To, m.To)
		}
		out[p.To[0].Address] = append(out[p.To[0].Address], p)
	}
	return out
}

// checkPaymentMail checks a received payment email: to the popug by name, the amount and day in
// the subject and both bodies.
func checkPaymentMail(tb testing.TB, p mailtest.Parsed, name string, amount money.Cents, day string) {
	tb.Helper()
	want := "$" + amount.String()
	if p.To[0].Name != name || p.From.Address != "ates@uberpopug.local" {
		tb.Errorf("mail from %v to %v, want from ates@uberpopug.local to %q", p.From, p.To, name)
	}
	if !strings.Contains(p.Subject, want) || !strings.Contains(p.Subject, day) ||
		!strings.Contains(p.Text, "paid out: "+want+".") || !strings.Contains(p.Text, day) ||
		!strings.Contains(p.HTML, "<strong>"+want+"</strong>") || !strings.Contains(p.HTML, "<strong>"+day+"</strong>") {
		tb.Errorf("mail to %s: subject %q, text %q, HTML %q; want %s on %s in each", p.To[0].Address, p.Subject, p.Text, p.HTML, want, day)
	}
}

// TestSendDueEmails: after a close, each paid popug receives exactly one email with its amount
// at a real SMTP server and its payment shows emailSent; nobody unpaid is emailed; a payout to an
// account accounting knows only from a task event (no address yet) is retried with backoff, not
// dropped, and sent once the account's address arrives.
func TestSendDueEmails(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withRand(lowestPrices{}))
		one := h.mustEarner(t, "one", 1, 1)     // +$10
		three := h.mustEarner(t, "three", 4, 4) // +$40
		minus := h.mustEarner(t, "minus", 1, 0) // −$10: not paid, not emailed
		stub := uuid.New()                      // +$10, no account.created yet
		h.mustEarn(t, stub, 1, 1)
		h.mustCloseNow(t, h.svc, actor(identity.Admin))

		srv := mailtest.MustStart(t)
		sender := mustSMTPSender(t, srv)
		h.mustSend(t, sender, 2)
		got := received(t, srv)
		if len(got) != 2 || len(got["one@uberpopug.com"]) != 1 || len(got["three@uberpopug.com"]) != 1 {
			t.Fatalf("received mail for %v, want one each for one and three", keys(got))
		}
		checkPaymentMail(t, got["one@uberpopug.com"][0], "Popug one", 1000, closeToday.String())
		checkPaymentMail(t, got["three@uberpopug.com"][0], "Popug three", 4000, closeToday.String())
		if !h.mustEmailSent(t, one) || !h.mustEmailSent(t, three) || h.mustEmailSent(t, stub) {
			t.Errorf("emailSent: one %v, three %v, stub %v; want true, true, false",
				h.mustEmailSent(t, one), h.mustEmailSent(t, three), h.mustEmailSent(t, stub))
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE account_id = $1`, minus.String()); n != 0 {
			t.Errorf("%d payments (email jobs) for an unpaid popug", n)
		}
		j := h.mustJob(t, stub)
		if j.Sent || j.Attempts != 1 || !strings.Contains(j.LastError, "no email address") || !j.Next.Equal(start.Add(time.Second)) {
			t.Errorf("stub's job = %+v, want one failed attempt retried in 1s", j)
		}

		// Not due yet: nothing is sent again, nobody gets a second email.
		h.mustSend(t, sender, 0)
		h.clock.Set(start.Add(time.Second))
		h.mustSend(t, sender, 0) // due, still no address: retried later
		if j := h.mustJob(t, stub); j.Attempts != 2 || !j.Next.Equal(start.Add(3*time.Second)) {
			t.Errorf("stub's job = %+v, want a second attempt retried 2s later", j)
		}
		// The account's data arrives; once due, the email goes out, once.
		h.deliver(t, accountCreated(t, stub, "stubby", identity.Worker, h.clock.Now()))
		h.mustSend(t, sender, 0)
		h.clock.Set(start.Add(3 * time.Second))
		h.mustSend(t, sender, 1)
		h.clock.Set(start.Add(time.Hour))
		h.mustSend(t, sender, 0)
		got = received(t, srv)
		if len(srv.Messages()) != 3 || len(got["stubby@uberpopug.com"]) != 1 {
			t.Fatalf("received %d messages for %v, want one more, for stubby", len(srv.Messages()), keys(got))
		}
		checkPaymentMail(t, got["stubby@uberpopug.com"][0], "Popug stubby", 1000, closeToday.String())
		if !h.mustEmailSent(t, stub) {
			t.Error("stub's payment does not show its email sent")
		}
		if j := h.mustJob(t, stub); !j.Sent || j.Attempts != 3 || j.LastError != "" {
			t.Errorf("stub's job = %+v, want sent on the third attempt", j)
		}
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSendDueEmailsRetriesWhileRefused: R-ACC-8 — while the mail server refuses (at MAIL, RCPT or
// DATA) the email is retried with a doubling backoff, at most once per due time, and sent
// exactly once when the server accepts again; the payment shows emailSent only then. The same
// for a server refusing for a period, and for a server that is down.
func TestSendDueEmailsRetriesWhileRefused(t *testing.T) {
	t.Parallel()
	for _, stage := range []mailtest.Stage{mailtest.Mail, mailtest.Rcpt, mailtest.Data} {
		t.Run(stage.String(), func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				t.Parallel()
				h := MustService(t, db, withRand(lowestPrices{}))
				popug := h.mustEarner(t, "kesha", 2, 2)
				h.mustCloseNow(t, h.svc, actor(identity.Accountant))
				srv := mailtest.MustStart(t)
				srv.RefuseFirst(stage, 3)
				sender := mustSMTPSender(t, srv)
				now := start
				for attempt := 1; attempt <= 3; attempt++ {
					h.mustSend(t, sender, 0)
					j := h.mustJob(t, popug)
					if j.Sent || j.Attempts != attempt || !strings.Contains(j.LastError, "451") ||
						!j.Next.Equal(now.Add(accounting.EmailBackoff(attempt))) {
						t.Fatalf("after refusal %d: job %+v, want retried at %v", attempt, j, now.Add(accounting.EmailBackoff(attempt)))
					}
					if h.mustEmailSent(t, popug) {
						t.Fatal("emailSent while the server refused")
					}
					h.mustSend(t, sender, 0) // not due again yet: no attempt
					if srv.Refused() != attempt {
						t.Fatalf("the server saw %d attempts after %d refusals", srv.Refused(), attempt)
					}
					now = j.Next
					h.clock.Set(now)
				}
				h.mustSend(t, sender, 1)
				h.clock.Set(now.Add(time.Hour))
				h.mustSend(t, sender, 0)
				got := received(t, srv)
				if len(srv.Messages()) != 1 || len(got["kesha@uberpopug.com"]) != 1 {
					t.Fatalf("received %d messages, want kesha's one", len(srv.Messages()))
				}
				checkPaymentMail(t, got["kesha@uberpopug.com"][0], "Popug kesha", 2000, closeToday.String())
				if !h.mustEmailSent(t, popug) {
					t.Error("emailSent still false after the email went out")
				}
			})
		})
	}

	t.Run("period", func(t *testing.T) {
		t.Parallel()
		storagetest.Each(t, func(t *testing.T, db *storage.DB) {
			t.Parallel()
			h := MustService(t, db, withRand(lowestPrices{}))
			popug := h.mustEarner(t, "kesha", 1, 1)
			h.mustCloseNow(t, h.svc, actor(identity.Admin))
			srv := mailtest.MustStart(t)
			srv.RefuseFor(mailtest.Rcpt, 500*time.Millisecond)
			sender := mustSMTPSender(t, srv)
			deadline := time.Now().Add(20 * time.Second)
			for h.mustJob(t, popug).Attempts == 0 || !h.mustJob(t, popug).Sent {
				if time.Now().After(deadline) {
					t.Fatalf("not sent after 20s: %+v", h.mustJob(t, popug))
				}
				if _, err := h.svc.SendDueEmails(context.Background(), sender); err != nil {
					t.Fatal(err)
				}
				h.clock.Set(h.mustJob(t, popug).Next) // the backoff passes
				time.Sleep(20 * time.Millisecond)
			}
			if j := h.mustJob(t, popug); j.Attempts < 2 || srv.Refused() != j.Attempts-1 || len(srv.Messages()) != 1 {
				t.Errorf("job %+v, %d refused, %d received: want refusals then one email", j, srv.Refused(), len(srv.Messages()))
			}
			if !h.mustEmailSent(t, popug) {
				t.Error("emailSent still false")
			}
		})
	})

	t.Run("down", func(t *testing.T) {
		t.Parallel()
		storagetest.Each(t, func(t *testing.T, db *storage.DB) {
			t.Parallel()
			h := MustService(t, db, withRand(lowestPrices{}))
			popug := h.mustEarner(t, "kesha", 1, 1)
			h.mustCloseNow(t, h.svc, actor(identity.Admin))
			down := mailtest.MustStart(t)
			downSender := mustSMTPSender(t, down)
			down.Close()
			h.mustSend(t, downSender, 0)
			if j := h.mustJob(t, popug); j.Sent || j.Attempts != 1 || j.LastError == "" {
				t.Fatalf("job after the server was down: %+v", j)
			}
			up := mailtest.MustStart(t)
			h.clock.Set(h.mustJob(t, popug).Next)
			h.mustSend(t, mustSMTPSender(t, up), 1)
			if len(up.Messages()) != 1 || !h.mustEmailSent(t, popug) {
				t.Errorf("%d messages, emailSent %v; want the email sent once", len(up.Messages()), h.mustEmailSent(t, popug))
			}
		})
	})
}

// TestConcurrentMailersSendEachJobOnce: two mailers (two instances on two pools, as two worker
// processes, each with its own SMTP client) run SendDueEmails at once until nothing is due: the
// lease gives each job to one of them, so every paid popug receives exactly one email and every
// payment shows emailSent.
func TestConcurrentMailersSendEachJobOnce(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		want := h.mustSeedBalances(t, 2*accounting.EmailBatch+accounting.EmailBatch/2)
		h.mustCloseNow(t, h.svc, actor(identity.Admin))
		other, _ := h.mustReplica(t, mustClosePool(t, db), newLockedRand(seed1, seed2))
		srv := mailtest.MustStart(t, mailtest.WithDelay(time.Millisecond)) // slow enough to overlap
		mailer := func(svc *accounting.Service) func() closeCall {
			sender := mustSMTPSender(t, srv)
			return func() closeCall {
				total := 0
				for {
					n, err := svc.SendDueEmails(context.Background(), sender)
					if err != nil {
						return closeCall{err: err}
					}
					if n == 0 {
						return closeCall{res: accounting.CloseResult{PaidAccounts: total}}
					}
					total += n
				}
			}
		}
		calls := raceCalls(mailer(h.svc), mailer(other))
		for i, c := range calls {
			if c.err != nil {
				t.Fatalf("mailer %d: %v", i, c.err)
			}
		}
		if sent := calls[0].res.PaidAccounts + calls[1].res.PaidAccounts; sent != len(want) {
			t.Errorf("the mailers sent %d + %d, want %d in all", calls[0].res.PaidAccounts, calls[1].res.PaidAccounts, len(want))
		}
		got := received(t, srv)
		if len(srv.Messages()) != len(want) || len(got) != len(want) {
			t.Errorf("%d messages to %d recipients, want one each for %d popugs", len(srv.Messages()), len(got), len(want))
		}
		for addr, ms := range got {
			if len(ms) != 1 {
				t.Errorf("%s received %d emails", addr, len(ms))
			}
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE email_sent`); n != len(want) {
			t.Errorf("%d payments show emailSent, want %d", n, len(want))
		}
		if n := h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE NOT email_sent OR email_attempts <> 1`); n != 0 {
			t.Errorf("%d email jobs unsent or sent more than once", n)
		}
	})
}

// slowSender delivers through a real sender and moves the fake clock on per message: a mail
// server that takes its time.
type slowSender struct {
	mail.Sender
	clock *fakeClock
	step  time.Duration
}

func (s slowSender) Send(ctx context.Context, m mail.Message) error {
	err := s.Sender.Send(ctx, m)
	s.clock.Set(s.clock.Now().Add(s.step))
	return err
}

// TestSendDueEmailsStopsBeforeTheLeaseEnds: a mailer whose sends are slow stops sending its
// claimed batch once half the lease has passed, so the rest — which another mailer may claim
// when the lease ends — is never sent by both; the rest goes out once, after the lease.
func TestSendDueEmailsStopsBeforeTheLeaseEnds(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		want := h.mustSeedBalances(t, 3)
		h.mustCloseNow(t, h.svc, actor(identity.Admin))
		srv := mailtest.MustStart(t)
		slow := slowSender{Sender: mustSMTPSender(t, srv), clock: h.clock, step: 40 * time.Second}
		h.mustSend(t, slow, 2) // at 0 s and 40 s; at 80 s the lease (2 min) is past its half
		other, _ := h.mustReplica(t, h.db, newLockedRand(seed1, seed2))
		if n, err := other.SendDueEmails(context.Background(), mustSMTPSender(t, srv)); err != nil || n != 0 {
			t.Fatalf("another mailer during the lease sent %d, %v; want nothing", n, err)
		}
		h.clock.Set(start.Add(2 * time.Minute)) // the lease ends
		if n, err := other.SendDueEmails(context.Background(), mustSMTPSender(t, srv)); err != nil || n != 1 {
			t.Fatalf("another mailer after the lease sent %d, %v; want the one left", n, err)
		}
		got := received(t, srv)
		if len(srv.Messages()) != len(want) || len(got) != len(want) {
			t.Errorf("%d messages to %d recipients, want one each for %d", len(srv.Messages()), len(got), len(want))
		}
	})
}

// TestRunMailerDrainsFullBatches: after a close of more accounts than one batch, the mailer
// sends batch after batch without waiting for its next tick, and stops when ctx ends.
func TestRunMailerDrainsFullBatches(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		want := h.mustSeedBalances(t, 2*accounting.EmailBatch+accounting.EmailBatch/2)
		h.mustCloseNow(t, h.svc, actor(identity.Admin))
		srv := mailtest.MustStart(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.svc.RunMailer(ctx, mustSMTPSender(t, srv), time.Hour) // no second tick in this test
		}()
		srv.WaitMessages(t, len(want), 60*time.Second)
		deadline := time.Now().Add(10 * time.Second)
		for h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE NOT email_sent`) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d payments without emailSent 10s after every email arrived",
					h.mustCount(t, `SELECT COUNT(*) FROM payments WHERE NOT email_sent`))
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("RunMailer did not return after ctx ended")
		}
		if got := received(t, srv); len(srv.Messages()) != len(want) || len(got) != len(want) {
			t.Errorf("%d messages to %d recipients, want one each for %d", len(srv.Messages()), len(got), len(want))
		}
	})
}
