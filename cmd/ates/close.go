package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-co-op/gocron/v2"

	"github.com/uberpopug/ates/services/mail"
)

// mailSender is SMTP when ATES_SMTP_URL is set, else the mailbox folder under the data dir.
func (a *app) mailSender() (mail.Sender, error) {
	if a.cfg.SMTPURL != "" {
		return mail.NewSMTP(a.cfg.SMTPURL, a.cfg.MailFrom)
	}
	return mail.NewMailbox(filepath.Join(a.cfg.DataDir, "mailbox"), a.cfg.MailFrom, a.log.With("component", "mailbox"))
}

// runEndOfDay runs the accounting worker's end-of-day duties until ctx ends (R-ACC-8): the
// scheduled close at ATES_CLOSE_SCHEDULE in ATES_TIMEZONE, a catch-up of a close missed while
// no process ran, and the mailer of payment emails.
func (a *app) runEndOfDay(ctx context.Context) error {
	sender, err := a.mailSender()
	if err != nil {
		return err
	}
	go a.accounting.RunMailer(ctx, sender, time.Second)

	if err := a.accounting.ResumeCloses(ctx); err != nil {
		a.log.Error("catching up on the end-of-day close", "error", err)
	}
	s, err := gocron.NewScheduler(gocron.WithLocation(a.cfg.Location()))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	_, err = s.NewJob(gocron.CronJob(a.cfg.CloseSchedule, false), gocron.NewTask(func(ctx context.Context) {
		day := a.accounting.ClosedDay(time.Now())
		res, ran, err := a.accounting.CloseScheduled(ctx, day)
		switch {
		case err != nil:
			a.log.Error("end-of-day close failed; it resumes at the next start or tick", "day", day.String(), "error", err)
		case !ran:
			a.log.Info("end-of-day close done elsewhere", "day", day.String())
		default:
			a.log.Info("end-of-day close", "day", res.Day.String(), "paidAccounts", res.PaidAccounts, "totalPaid", res.TotalPaid.String())
		}
	}), gocron.WithContext(ctx), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		return fmt.Errorf("scheduling the close %q: %w", a.cfg.CloseSchedule, err)
	}
	s.Start()
	<-ctx.Done()
	return s.Shutdown()
}
