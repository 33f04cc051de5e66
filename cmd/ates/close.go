package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/robfig/cron/v3"

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
// no process ran, and the mailer of payment emails. It returns once the mailer and any running
// close have stopped, so nothing uses the database after the process closes it.
func (a *app) runEndOfDay(ctx context.Context) error {
	sender, err := a.mailSender()
	if err != nil {
		return err
	}
	schedule, err := closeSchedule(a.cfg.CloseSchedule, a.cfg.Location())
	if err != nil {
		return err
	}
	mailerCtx, stopMailer := context.WithCancel(ctx)
	var mailer sync.WaitGroup
	mailer.Go(func() { a.accounting.RunMailer(mailerCtx, sender, time.Second) })
	defer func() {
		stopMailer()
		mailer.Wait()
	}()

	if err := a.accounting.ResumeCloses(ctx); err != nil {
		a.log.Error("catching up on the end-of-day close", "error", err)
	}
	s, err := gocron.NewScheduler(gocron.WithLocation(a.cfg.Location()))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	_, err = s.NewJob(gocron.CronJob(a.cfg.CloseSchedule, false), gocron.NewTask(func(ctx context.Context) {
		day := a.accounting.ClosedDay(tickOf(schedule, time.Now()))
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
	return s.Shutdown() // waits for a running close
}

// closeSchedule parses ATES_CLOSE_SCHEDULE as the scheduler does: a standard cron expression in
// the business-day timezone unless it names its own (CRON_TZ=…).
func closeSchedule(expr string, loc *time.Location) (cron.Schedule, error) {
	if !strings.HasPrefix(expr, "TZ=") && !strings.HasPrefix(expr, "CRON_TZ=") {
		expr = "CRON_TZ=" + loc.String() + " " + expr
	}
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("ATES_CLOSE_SCHEDULE %q: %w", expr, err)
	}
	return s, nil
}

// tickOf is the tick of the schedule a job running at now belongs to: the day closed is the
// tick's, not the moment's, so a tick that runs late (a suspended machine, a busy process)
// still closes the day that ended. A job runs at or after its tick, up to a wall-clock
// adjustment early; standard cron ticks are at least a minute apart.
func tickOf(s cron.Schedule, now time.Time) time.Time {
	return lastTick(s, now.Add(30*time.Second))
}

// lastTick is the latest time at or before now the schedule fires; now when it has not fired
// in the past year.
func lastTick(s cron.Schedule, now time.Time) time.Time {
	// Look back over growing windows: one hour covers frequent schedules in a few steps,
	// a year any schedule.
	for _, back := range []time.Duration{time.Hour, 49 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour} {
		var last time.Time
		for t := s.Next(now.Add(-back)); !t.IsZero() && !t.After(now); t = s.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last
		}
	}
	return now
}
