package analytics

import (
	"bytes"
	"context"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/ent/analyticsdb/dailytop"
	"github.com/uberpopug/ates/ent/analyticsdb/task"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
)

// Range limits (R-API-6): a series by day covers at most MaxDaySeriesDays days; any other
// range (MostExpensive, series by week or month) at most MaxRangeYears years: it ends before
// the same date MaxRangeYears years after its start.
const (
	MaxDaySeriesDays = 400
	MaxRangeYears    = 5
)

// MostExpensive returns the most expensive task completed in [from, to] (business days, both
// inclusive): the highest reward, ties going to the earliest completion, then to the smallest
// task id; Top is nil when no priced task was completed then (R-AN-3). ADMIN only (R-AN-1).
// It reads the range's daily tops — at most one row per day — and the winner's task.
func (s *Service) MostExpensive(ctx context.Context, actor identity.Actor, from, to calendar.Date) (Bucket, error) {
	if err := authorize(actor); err != nil {
		return Bucket{}, err
	}
	if err := checkRange(from, to); err != nil {
		return Bucket{}, err
	}
	if !to.Before(addYears(from, MaxRangeYears)) {
		return Bucket{}, errs.InvalidField("to", "a range covers at most %d years; ask for a shorter one", MaxRangeYears)
	}
	top, err := s.client.DailyTop.Query().
		Where(dailytop.DayGTE(from.String()), dailytop.DayLTE(to.String())).
		Order(dailytop.ByReward(entsql.OrderDesc()), dailytop.ByCompletedAt(), dailytop.ByTaskID()).
		First(ctx)
	if analyticsdb.IsNotFound(err) {
		return Bucket{From: from, To: to}, nil
	}
	if err != nil {
		return Bucket{}, fmt.Errorf("analytics: finding the most expensive task: %w", err)
	}
	tops, err := s.withTasks(ctx, []*analyticsdb.DailyTop{top})
	if err != nil {
		return Bucket{}, err
	}
	return Bucket{From: from, To: to, Top: tops[0]}, nil
}

// MostExpensiveSeries returns the most expensive task of every day, ISO week (Monday to
// Sunday) or calendar month touching [from, to], oldest first (R-AN-3). Buckets are whole
// periods: the first starts on or before from, the last ends on or after to, and each covers
// its whole period. ADMIN only (R-AN-1). Two queries whatever the range: the daily tops of the
// buckets' days (one row per day at most), then the winners' tasks.
func (s *Service) MostExpensiveSeries(ctx context.Context, actor identity.Actor, from, to calendar.Date, period Period) ([]Bucket, error) {
	if err := authorize(actor); err != nil {
		return nil, err
	}
	if err := checkRange(from, to); err != nil {
		return nil, err
	}
	switch period {
	case Day:
		if days(from, to) > MaxDaySeriesDays {
			return nil, errs.InvalidField("to", "a series by day covers at most %d days; ask for a shorter range, or by week or month", MaxDaySeriesDays)
		}
	case Week, Month:
		if !to.Before(addYears(from, MaxRangeYears)) {
			return nil, errs.InvalidField("to", "a series covers at most %d years; ask for a shorter range", MaxRangeYears)
		}
	default:
		return nil, errs.InvalidField("period", "unknown period %q (want DAY, WEEK or MONTH)", period)
	}
	buckets := bucketsOf(from, to, period)
	rows, err := s.client.DailyTop.Query().
		Where(dailytop.DayGTE(buckets[0].From.String()), dailytop.DayLTE(buckets[len(buckets)-1].To.String())).
		Order(dailytop.ByDay()).
		All(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: reading the daily tops: %w", err)
	}
	// Both are in day order: walk them together, keeping each bucket's best day.
	best := make([]*analyticsdb.DailyTop, len(buckets))
	b := 0
	for _, r := range rows {
		for b < len(buckets) && buckets[b].To.String() < r.Day {
			b++
		}
		if b == len(buckets) {
			break
		}
		if best[b] == nil || better(r, best[b]) {
			best[b] = r
		}
	}
	var winners []*analyticsdb.DailyTop
	for _, w := range best {
		if w != nil {
			winners = append(winners, w)
		}
	}
	tops, err := s.withTasks(ctx, winners)
	if err != nil {
		return nil, err
	}
	for i, j := 0, 0; i < len(buckets); i++ {
		if best[i] != nil {
			buckets[i].Top = tops[j]
			j++
		}
	}
	return buckets, nil
}

// better is the order of R-AN-3: a higher reward, then an earlier completion, then a smaller
// task id (the order PostgreSQL's uuid and SQLite's text comparisons give too).
func better(a, b *analyticsdb.DailyTop) bool {
	if a.Reward != b.Reward {
		return a.Reward > b.Reward
	}
	if !a.CompletedAt.Equal(b.CompletedAt) {
		return a.CompletedAt.Before(b.CompletedAt)
	}
	return bytes.Compare(a.TaskID[:], b.TaskID[:]) < 0
}

// withTasks completes daily tops with their tasks' descriptions, in the same order.
func (s *Service) withTasks(ctx context.Context, tops []*analyticsdb.DailyTop) ([]*ExpensiveTask, error) {
	if len(tops) == 0 {
		return nil, nil
	}
	ids := make([]uuid.UUID, len(tops))
	for i, t := range tops {
		ids[i] = t.TaskID
	}
	rows, err := s.client.Task.Query().Where(task.TaskIDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: reading the most expensive tasks: %w", err)
	}
	byID := make(map[uuid.UUID]*analyticsdb.Task, len(rows))
	for _, r := range rows {
		byID[r.TaskID] = r
	}
	out := make([]*ExpensiveTask, len(tops))
	for i, t := range tops {
		r, ok := byID[t.TaskID]
		if !ok {
			return nil, fmt.Errorf("analytics: the top task %s of %s has no task row", t.TaskID, t.Day)
		}
		e := &ExpensiveTask{
			TaskID: t.TaskID, Title: r.Title, JiraID: r.JiraID, Description: r.Description,
			Reward: money.Cents(t.Reward), CompletedAt: t.CompletedAt.UTC(),
		}
		if r.AssigneeID != nil {
			e.AssigneeID = *r.AssigneeID
		}
		out[i] = e
	}
	return out, nil
}

// checkRange refuses a missing bound and a range that ends before it starts.
func checkRange(from, to calendar.Date) error {
	switch {
	case from.IsZero():
		return errs.InvalidField("from", "the start of the range is missing")
	case to.IsZero():
		return errs.InvalidField("to", "the end of the range is missing")
	case to.Before(from):
		return errs.InvalidField("to", "the range ends (%s) before it starts (%s)", to, from)
	}
	return nil
}

// days is the number of days in [from, to].
func days(from, to calendar.Date) int {
	return int(to.Start(time.UTC).Sub(from.Start(time.UTC))/(24*time.Hour)) + 1
}

// addYears returns the date n years after d (Feb 29 goes to Mar 1 in a common year).
func addYears(d calendar.Date, n int) calendar.Date {
	return calendar.DateOf(time.Date(d.Year+n, d.Month, d.Day, 12, 0, 0, 0, time.UTC), time.UTC)
}

// bucketsOf returns the whole periods touching [from, to], oldest first.
func bucketsOf(from, to calendar.Date, p Period) []Bucket {
	var out []Bucket
	for start := periodStart(from, p); !to.Before(start); {
		end := periodEnd(start, p)
		out = append(out, Bucket{From: start, To: end})
		start = end.AddDays(1)
	}
	return out
}

// periodStart is the first day of the period holding d: d itself, the Monday of its ISO week,
// or the first of its month.
func periodStart(d calendar.Date, p Period) calendar.Date {
	switch p {
	case Week:
		return d.AddDays(-((int(d.Start(time.UTC).Weekday()) + 6) % 7))
	case Month:
		return calendar.Date{Year: d.Year, Month: d.Month, Day: 1}
	default:
		return d
	}
}

// periodEnd is the last day of the period starting on start.
func periodEnd(start calendar.Date, p Period) calendar.Date {
	switch p {
	case Week:
		return start.AddDays(6)
	case Month:
		return calendar.DateOf(time.Date(start.Year, start.Month+1, 0, 12, 0, 0, 0, time.UTC), time.UTC)
	default:
		return start
	}
}
