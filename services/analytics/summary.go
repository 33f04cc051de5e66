package analytics

import (
	"context"
	"fmt"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/ent/analyticsdb/account"
	"github.com/uberpopug/ates/ent/analyticsdb/dayclose"
	"github.com/uberpopug/ates/ent/analyticsdb/ledgerentry"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
)

// Summary returns a business day's management earnings and how many popugs have a negative
// balance: now when the day is today (the default, day == nil), at the end of the day for a
// past day (R-AN-2). ADMIN only (R-AN-1); a day after today is BAD_USER_INPUT.
func (s *Service) Summary(ctx context.Context, actor identity.Actor, day *calendar.Date) (Summary, error) {
	if err := authorize(actor); err != nil {
		return Summary{}, err
	}
	today := s.today()
	d := today
	if day != nil {
		d = *day
	}
	if d.IsZero() {
		return Summary{}, errs.InvalidField("date", "the date is missing")
	}
	if today.Before(d) {
		return Summary{}, errs.InvalidField("date", "%s is in the future: today is %s", d, today)
	}
	out := Summary{Date: d}
	var err error
	if out.ManagementEarnings, err = s.earnings(ctx, d); err != nil {
		return Summary{}, err
	}
	if d == today {
		out.NegativeBalanceCount, err = s.client.Account.Query().Where(account.BalanceLT(0)).Count(ctx)
	} else {
		out.NegativeBalanceCount, err = s.negativeAtEndOf(ctx, d)
	}
	if err != nil {
		return Summary{}, err
	}
	out.Closed, err = s.client.DayClose.Query().Where(dayclose.Day(d.String()), dayclose.Scheduled(true)).Exist(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("analytics: reading the closes of %s: %w", d, err)
	}
	return out, nil
}

// earnings is −(sum of the day's FEE and REWARD entries) = fees − rewards (R-ACC-6).
func (s *Service) earnings(ctx context.Context, d calendar.Date) (money.Cents, error) {
	var sum []struct {
		Sum int64 `json:"sum"`
	}
	err := s.client.LedgerEntry.Query().
		Where(ledgerentry.Day(d.String()), ledgerentry.TypeIn(ledgerentry.TypeFEE, ledgerentry.TypeREWARD)).
		Aggregate(analyticsdb.Sum(ledgerentry.FieldAmount)).Scan(ctx, &sum)
	if err != nil {
		return 0, fmt.Errorf("analytics: summing the entries of %s: %w", d, err)
	}
	if len(sum) == 0 {
		return 0, nil
	}
	return -money.Cents(sum[0].Sum), nil
}

// negativeAtEndOf counts the accounts whose balance at the end of day d — that of their latest
// account_days row at or before d — is negative: one query, an index seek on
// (account_id, day) per account.
func (s *Service) negativeAtEndOf(ctx context.Context, d calendar.Date) (int, error) {
	var n int
	rows, err := s.client.QueryContext(ctx, s.sql(`SELECT COUNT(*) FROM accounts a
		WHERE (SELECT d.balance FROM account_days d WHERE d.account_id = a.account_id AND d.day <= $1
			ORDER BY d.day DESC LIMIT 1) < 0`), d.String())
	if err != nil {
		return 0, fmt.Errorf("analytics: counting negative balances at the end of %s: %w", d, err)
	}
	defer rows.Close()
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("analytics: counting negative balances at the end of %s: %w", d, err)
	}
	return n, nil
}
