package accounting

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/accountingdb/account"
	"github.com/uberpopug/ates/ent/accountingdb/accountday"
	"github.com/uberpopug/ates/ent/accountingdb/entry"
	"github.com/uberpopug/ates/ent/accountingdb/payment"
	"github.com/uberpopug/ates/ent/accountingdb/task"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/page"
)

// MaxRangeDays bounds a per-day range (days, managementEarnings): a bit more than a year.
const MaxRangeDays = 400

// BillingAccount is a popug's balance and what they earned today (R-ACC-5).
type BillingAccount struct {
	AccountID   uuid.UUID
	Balance     money.Cents
	EarnedToday money.Cents
}

// BillingDay is one day of an account: what it earned (FEE and REWARD entries) and what was
// paid out at the day's close (R-ACC-9).
type BillingDay struct {
	Date    calendar.Date
	Earned  money.Cents
	PaidOut money.Cents
}

// CompanyDay is the company's earnings on one day (R-ACC-6).
type CompanyDay struct {
	Date     calendar.Date
	Earnings money.Cents
}

// seeAccount applies R-ACC-5: ADMIN and ACCOUNTANT see every account, anyone else their own.
func seeAccount(actor identity.Actor, id uuid.UUID) error {
	if actor.AccountID == uuid.Nil {
		return errs.E(errs.Unauthenticated, "log in to see billing accounts")
	}
	if actor.Is(identity.Admin, identity.Accountant) || actor.AccountID == id {
		return nil
	}
	return errs.E(errs.Forbidden, "you can only see your own billing account")
}

func seeCompany(actor identity.Actor) error {
	if actor.AccountID == uuid.Nil {
		return errs.E(errs.Unauthenticated, "log in to see billing figures")
	}
	if !actor.Is(identity.Admin, identity.Accountant) {
		return errs.E(errs.Forbidden, "only an admin or an accountant can see every account and the company figures")
	}
	return nil
}

// Account returns a billing account. The caller's own account exists with balance 0.00 even
// before accounting heard of it; another unknown account is NOT_FOUND.
func (s *Service) Account(ctx context.Context, actor identity.Actor, id uuid.UUID) (BillingAccount, error) {
	if err := seeAccount(actor, id); err != nil {
		return BillingAccount{}, err
	}
	a, err := s.client.Account.Query().Where(account.PublicID(id)).Only(ctx)
	if accountingdb.IsNotFound(err) {
		if id == actor.AccountID {
			return BillingAccount{AccountID: id}, nil
		}
		return BillingAccount{}, errs.E(errs.NotFound, "no billing account for account %s", id)
	}
	if err != nil {
		return BillingAccount{}, fmt.Errorf("accounting: loading account: %w", err)
	}
	earned, err := s.earned(ctx, id, s.today())
	if err != nil {
		return BillingAccount{}, err
	}
	return BillingAccount{AccountID: id, Balance: money.Cents(a.Balance), EarnedToday: earned}, nil
}

// Accounts returns a page of billing accounts in the order accounting heard of them; ADMIN and
// ACCOUNTANT only (R-ACC-5).
func (s *Service) Accounts(ctx context.Context, actor identity.Actor, req page.Request) (page.Page[BillingAccount], error) {
	if err := seeCompany(actor); err != nil {
		return page.Page[BillingAccount]{}, err
	}
	total, err := page.Total(req, func() (int, error) { return s.client.Account.Query().Count(ctx) })
	if err != nil {
		return page.Page[BillingAccount]{}, fmt.Errorf("accounting: counting accounts: %w", err)
	}
	rows, err := s.client.Account.Query().Where(account.IDGT(int(req.After))).
		Order(accountingdb.Asc(account.FieldID)).Limit(req.First + 1).All(ctx)
	if err != nil {
		return page.Page[BillingAccount]{}, fmt.Errorf("accounting: listing accounts: %w", err)
	}
	p := page.Page[BillingAccount]{TotalCount: total, HasPrev: req.After > 0}
	if len(rows) > req.First {
		rows, p.HasNext = rows[:req.First], true
	}
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = r.PublicID
	}
	earned, err := s.earnedMany(ctx, ids, s.today())
	if err != nil {
		return page.Page[BillingAccount]{}, err
	}
	for _, r := range rows {
		p.Items = append(p.Items, BillingAccount{AccountID: r.PublicID, Balance: money.Cents(r.Balance), EarnedToday: earned[r.PublicID]})
		p.Keys = append(p.Keys, int64(r.ID))
	}
	return p, nil
}

// earnedMany reads what a page of accounts earned on a day (FEE and REWARD entries) from their
// account days, in one query.
func (s *Service) earnedMany(ctx context.Context, ids []uuid.UUID, day calendar.Date) (map[uuid.UUID]money.Cents, error) {
	out := make(map[uuid.UUID]money.Cents, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.client.AccountDay.Query().
		Where(accountday.AccountIDIn(ids...), accountday.Day(day.String())).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounting: reading today's earnings: %w", err)
	}
	for _, r := range rows {
		out[r.AccountID] = money.Cents(r.Fees + r.Rewards)
	}
	return out, nil
}

// earned reads what an account earned on a day (FEE and REWARD entries) from its account day.
func (s *Service) earned(ctx context.Context, id uuid.UUID, day calendar.Date) (money.Cents, error) {
	m, err := s.earnedMany(ctx, []uuid.UUID{id}, day)
	return m[id], err
}

// entryCount is how many entries an account has, of one business day or in all: the day's
// account day or the account's count, which grow with the entries.
func (s *Service) entryCount(ctx context.Context, id uuid.UUID, day *calendar.Date) (int, error) {
	var (
		counts []int64
		err    error
	)
	if day != nil {
		err = s.client.AccountDay.Query().Where(accountday.AccountID(id), accountday.Day(day.String())).
			Select(accountday.FieldEntries).Scan(ctx, &counts)
	} else {
		err = s.client.Account.Query().Where(account.PublicID(id)).Select(account.FieldEntryCount).Scan(ctx, &counts)
	}
	if err != nil {
		return 0, fmt.Errorf("accounting: counting entries: %w", err)
	}
	if len(counts) == 0 {
		return 0, nil
	}
	return int(counts[0]), nil
}

// Entries returns an account's audit log, newest first — the order entries were applied, so
// balanceAfter chains — optionally of one business day (R-ACC-5).
func (s *Service) Entries(ctx context.Context, actor identity.Actor, id uuid.UUID, day *calendar.Date, req page.Request) (page.Page[Entry], error) {
	if err := seeAccount(actor, id); err != nil {
		return page.Page[Entry]{}, err
	}
	q := s.client.Entry.Query().Where(entry.AccountID(id))
	if day != nil {
		q = q.Where(entry.Day(day.String()))
	}
	total, err := page.Total(req, func() (int, error) { return s.entryCount(ctx, id, day) })
	if err != nil {
		return page.Page[Entry]{}, err
	}
	if req.After > 0 {
		q = q.Where(entry.IDLT(int(req.After)))
	}
	rows, err := q.Order(accountingdb.Desc(entry.FieldID)).Limit(req.First + 1).All(ctx)
	if err != nil {
		return page.Page[Entry]{}, fmt.Errorf("accounting: listing entries: %w", err)
	}
	p := page.Page[Entry]{TotalCount: total, HasPrev: req.After > 0}
	if len(rows) > req.First {
		rows, p.HasNext = rows[:req.First], true
	}
	labels, err := s.taskLabels(ctx, rows)
	if err != nil {
		return page.Page[Entry]{}, err
	}
	for _, r := range rows {
		p.Items = append(p.Items, toEntry(r, labels))
		p.Keys = append(p.Keys, int64(r.ID))
	}
	return p, nil
}

// taskLabels returns how the entries' tasks read in the audit log, with one query.
func (s *Service) taskLabels(ctx context.Context, rows []*accountingdb.Entry) (map[uuid.UUID]string, error) {
	var ids []uuid.UUID
	for _, r := range rows {
		if r.TaskID != nil {
			ids = append(ids, *r.TaskID)
		}
	}
	labels := map[uuid.UUID]string{}
	if len(ids) == 0 {
		return labels, nil
	}
	ts, err := s.client.Task.Query().Where(task.PublicIDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounting: loading tasks: %w", err)
	}
	for _, t := range ts {
		if t.Described {
			labels[t.PublicID] = contract.TaskLabel(t.JiraID, t.Title)
		}
	}
	return labels, nil
}

func toEntry(r *accountingdb.Entry, labels map[uuid.UUID]string) Entry {
	day, _ := calendar.Parse(r.Day)
	e := Entry{
		ID: r.PublicID, AccountID: r.AccountID, Type: EntryType(r.Type), Amount: money.Cents(r.Amount),
		BalanceAfter: money.Cents(r.BalanceAfter), TaskID: r.TaskID, OccurredAt: r.OccurredAt.UTC(), Day: day,
	}
	e.Description = describe(e, labels)
	return e
}

// describe is the audit-log line of an entry, e.g. "Fee for task UBERPOP-42 Fix the beak scanner".
func describe(e Entry, labels map[uuid.UUID]string) string {
	label := ""
	if e.TaskID != nil {
		label = labels[*e.TaskID]
		if label == "" {
			label = e.TaskID.String()
		}
	}
	switch e.Type {
	case Fee:
		return "Fee for task " + label
	case Reward:
		return "Reward for task " + label
	default:
		return "Payout for " + e.Day.String()
	}
}

// checkRange validates an inclusive day range.
func checkRange(from, to calendar.Date) (int, error) {
	if to.Before(from) {
		return 0, errs.InvalidField("to", "to must not be before from")
	}
	n := int(to.Start(time.UTC).Sub(from.Start(time.UTC)).Hours()/24) + 1
	if n > MaxRangeDays {
		return 0, errs.InvalidField("to", "a range is at most %d days", MaxRangeDays)
	}
	return n, nil
}

// Days returns one element per date in [from, to], oldest first, read from the account's
// account days (R-ACC-9).
func (s *Service) Days(ctx context.Context, actor identity.Actor, id uuid.UUID, from, to calendar.Date) ([]BillingDay, error) {
	if err := seeAccount(actor, id); err != nil {
		return nil, err
	}
	n, err := checkRange(from, to)
	if err != nil {
		return nil, err
	}
	rows, err := s.client.QueryContext(ctx, s.sql(`SELECT day, fees + rewards, -payouts
		FROM account_days WHERE account_id = $1 AND day >= $2 AND day <= $3`),
		id.String(), from.String(), to.String())
	if err != nil {
		return nil, fmt.Errorf("accounting: summing days: %w", err)
	}
	defer rows.Close()
	byDay := map[string]BillingDay{}
	for rows.Next() {
		var day string
		var earned, paid int64
		if err := rows.Scan(&day, &earned, &paid); err != nil {
			return nil, fmt.Errorf("accounting: summing days: %w", err)
		}
		byDay[day] = BillingDay{Earned: money.Cents(earned), PaidOut: money.Cents(paid)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounting: summing days: %w", err)
	}
	out := make([]BillingDay, n)
	for i := range out {
		d := from.AddDays(i)
		out[i] = byDay[d.String()]
		out[i].Date = d
	}
	return out, nil
}

// ManagementEarnings returns the company's earnings per date in [from, to], oldest first:
// −(sum of the day's FEE and REWARD entries) = fees − rewards (R-ACC-6), read from the company
// days; ADMIN and ACCOUNTANT.
func (s *Service) ManagementEarnings(ctx context.Context, actor identity.Actor, from, to calendar.Date) ([]CompanyDay, error) {
	if err := seeCompany(actor); err != nil {
		return nil, err
	}
	n, err := checkRange(from, to)
	if err != nil {
		return nil, err
	}
	rows, err := s.client.QueryContext(ctx, s.sql(`SELECT day, fees + rewards FROM company_days
		WHERE day >= $1 AND day <= $2`), from.String(), to.String())
	if err != nil {
		return nil, fmt.Errorf("accounting: summing earnings: %w", err)
	}
	defer rows.Close()
	byDay := map[string]money.Cents{}
	for rows.Next() {
		var day string
		var sum int64
		if err := rows.Scan(&day, &sum); err != nil {
			return nil, fmt.Errorf("accounting: summing earnings: %w", err)
		}
		byDay[day] = money.Cents(-sum)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("accounting: summing earnings: %w", err)
	}
	out := make([]CompanyDay, n)
	for i := range out {
		d := from.AddDays(i)
		out[i] = CompanyDay{Date: d, Earnings: byDay[d.String()]}
	}
	return out, nil
}

// Payment is a payout made to a popug (R-ACC-8).
type Payment struct {
	ID        uuid.UUID
	Amount    money.Cents
	Day       calendar.Date
	CreatedAt time.Time
	EmailSent bool
}

// Payments returns an account's newest payments, at most first.
func (s *Service) Payments(ctx context.Context, actor identity.Actor, id uuid.UUID, first int) ([]Payment, error) {
	if err := seeAccount(actor, id); err != nil {
		return nil, err
	}
	rows, err := s.client.Payment.Query().Where(payment.AccountID(id)).
		Order(accountingdb.Desc(payment.FieldID)).Limit(first).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounting: listing payments: %w", err)
	}
	out := make([]Payment, len(rows))
	for i, r := range rows {
		day, _ := calendar.Parse(r.Day)
		out[i] = Payment{ID: r.PublicID, Amount: money.Cents(r.Amount), Day: day, CreatedAt: r.CreatedAt.UTC(), EmailSent: r.EmailSent}
	}
	return out, nil
}
