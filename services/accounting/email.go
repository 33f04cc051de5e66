package accounting

import (
	"context"
	"fmt"
	"html"
	"time"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/mail"
	"github.com/uberpopug/ates/services/money"
)

// Mailer policy: a claimed job is invisible to other mailers for emailLease; a failed attempt
// is retried after a backoff doubling from a second up to five minutes, for as long as it takes.
const (
	emailLease      = 2 * time.Minute
	emailBackoffMin = time.Second
	emailBackoffMax = 5 * time.Minute
	emailBatch      = 100
	// emailRecordTimeout bounds recording an attempt's outcome, which outlives a cancelled ctx.
	emailRecordTimeout = 10 * time.Second
)

// emailRetry is the schedule of a payment email's attempts; its next attempt is stored with
// the payment, so the wait has no jitter.
var emailRetry = backoff.Policy{Initial: emailBackoffMin, Max: emailBackoffMax}

// emailBackoff is the wait after the attempts-th failed attempt.
func emailBackoff(attempts int) time.Duration { return emailRetry.Delay(attempts) }

// emailJob is a claimed payment email.
type emailJob struct {
	id       int64
	payment  string
	amount   money.Cents
	day      string
	email    string
	name     string
	attempts int
}

// PaymentEmail is the message telling a popug what was paid (R-ACC-8).
func PaymentEmail(to, name string, amount money.Cents, day string) mail.Message {
	greeting := "Hello"
	if name != "" {
		greeting += " " + name
	}
	text := fmt.Sprintf("%s,\n\nyour aTES balance for %s has been paid out: $%s.\n\nUberPopug Inc.\n", greeting, day, amount)
	body := fmt.Sprintf("<p>%s,</p><p>your aTES balance for <strong>%s</strong> has been paid out: <strong>$%s</strong>.</p><p>UberPopug Inc.</p>",
		html.EscapeString(greeting), html.EscapeString(day), amount)
	return mail.Message{
		To: to, ToName: name, Subject: fmt.Sprintf("aTES payout for %s: $%s", day, amount),
		Text: text, HTML: "<!DOCTYPE html><html><body>" + body + "</body></html>",
	}
}

// SendDueEmails sends the payment emails that are due, at least once each after their payout
// committed (R-ACC-8): a job is claimed, sent, then marked sent together with its payment's
// emailSent; a refused send is retried later with backoff. It returns how many were sent.
func (s *Service) SendDueEmails(ctx context.Context, sender mail.Sender) (int, error) {
	sent, _, err := s.sendDueEmails(ctx, sender)
	return sent, err
}

// sendDueEmails sends one claimed batch and also reports how many jobs it claimed. It sends
// only while the lease is young: past half of it, the rest of the batch is left to fall due
// again when the lease ends, so a slow server never lets another mailer claim (and send) a job
// this one is still about to send.
func (s *Service) sendDueEmails(ctx context.Context, sender mail.Sender) (sent, claimed int, err error) {
	leased := s.now()
	jobs, err := s.claimEmails(ctx)
	if err != nil {
		return 0, 0, err
	}
	for i, j := range jobs {
		if ctx.Err() != nil {
			return sent, len(jobs), ctx.Err() // the rest falls due again when the lease ends
		}
		if s.now().Sub(leased) >= emailLease/2 {
			s.log.WarnContext(ctx, "payment emails slow to send; leaving the rest of the batch for later", "left", len(jobs)-i)
			break
		}
		var sendErr error
		if j.email == "" {
			sendErr = fmt.Errorf("no email address known yet for the account")
		} else {
			sendErr = sender.Send(ctx, PaymentEmail(j.email, j.name, j.amount, j.day))
		}
		// Recorded even when shutdown has begun: an email the server accepted is not sent again.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), emailRecordTimeout)
		err := s.recordEmail(rctx, j, sendErr)
		cancel()
		if err != nil {
			return sent, len(jobs), err
		}
		if sendErr == nil {
			sent++
		} else {
			s.log.WarnContext(ctx, "payment email not sent; will retry", "payment", j.payment, "attempts", j.attempts+1, "error", sendErr)
		}
	}
	return sent, len(jobs), nil
}

// claimEmails leases due jobs so concurrent mailers (several workers) don't take the same ones.
func (s *Service) claimEmails(ctx context.Context) ([]emailJob, error) {
	var jobs []emailJob
	err := s.inTx(ctx, func(tx *accountingdb.Tx) error {
		now := s.now().UTC()
		lock := ""
		if s.dialect == dialect.Postgres {
			lock = " FOR UPDATE OF p SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, s.sql(`SELECT p.id, p.public_id, p.amount, p.day, a.email, a.full_name, p.email_attempts
			FROM payments p JOIN accounts a ON a.public_id = p.account_id
			WHERE p.email_sent = false AND p.email_next_attempt_at <= $1 ORDER BY p.email_next_attempt_at LIMIT $2`+lock), now, emailBatch)
		if err != nil {
			return fmt.Errorf("accounting: reading due emails: %w", err)
		}
		for rows.Next() {
			var j emailJob
			var amount int64
			if err := rows.Scan(&j.id, &j.payment, &amount, &j.day, &j.email, &j.name, &j.attempts); err != nil {
				rows.Close()
				return fmt.Errorf("accounting: reading due emails: %w", err)
			}
			j.amount = money.Cents(amount)
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("accounting: reading due emails: %w", err)
		}
		for _, j := range jobs {
			if _, err := tx.ExecContext(ctx, s.sql(`UPDATE payments SET email_next_attempt_at = $1 WHERE id = $2`), now.Add(emailLease), j.id); err != nil {
				return fmt.Errorf("accounting: leasing emails: %w", err)
			}
		}
		return nil
	})
	return jobs, err
}

func (s *Service) recordEmail(ctx context.Context, j emailJob, sendErr error) error {
	return s.inTx(ctx, func(tx *accountingdb.Tx) error {
		now := s.now().UTC()
		if sendErr == nil {
			if _, err := tx.ExecContext(ctx, s.sql(`UPDATE payments SET email_sent = true, email_sent_at = $1,
				email_attempts = email_attempts + 1, email_last_error = '' WHERE id = $2`), now, j.id); err != nil {
				return fmt.Errorf("accounting: marking email sent: %w", err)
			}
			return nil
		}
		msg := sendErr.Error()
		if len(msg) > 2000 {
			msg = msg[:2000]
		}
		_, err := tx.ExecContext(ctx, s.sql(`UPDATE payments SET email_attempts = email_attempts + 1, email_last_error = $1,
			email_next_attempt_at = $2 WHERE id = $3`),
			msg, now.Add(emailBackoff(j.attempts+1)), j.id)
		if err != nil {
			return fmt.Errorf("accounting: recording a failed email: %w", err)
		}
		return nil
	})
}

// RunMailer sends due payment emails until ctx ends: batch after batch while batches come back
// full (a close of many accounts), then every interval.
func (s *Service) RunMailer(ctx context.Context, sender mail.Sender, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		_, claimed, err := s.sendDueEmails(ctx, sender)
		if err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "mailer", "error", err)
		}
		if err == nil && claimed == emailBatch && ctx.Err() == nil {
			continue // more may be due right now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
