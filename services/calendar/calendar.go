// Package calendar is the business day of R-ACC-7: a calendar date in the configured timezone.
package calendar

import (
	"fmt"
	"time"
)

// Date is a calendar date without a time of day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Layout is the textual form of a Date, YYYY-MM-DD.
const Layout = "2006-01-02"

// DateOf returns the date of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// Parse reads a YYYY-MM-DD date.
func Parse(s string) (Date, error) {
	t, err := time.Parse(Layout, s)
	if err != nil {
		return Date{}, fmt.Errorf("calendar: %q is not a date like 2026-01-31", s)
	}
	return DateOf(t, time.UTC), nil
}

// String formats the date as YYYY-MM-DD.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Start returns the first instant of the date in loc.
func (d Date) Start(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// AddDays returns the date n days later (earlier when n is negative).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC), time.UTC)
}

// Before reports whether d is before o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// Compare returns -1, 0 or 1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int {
	a, b := d.Start(time.UTC), o.Start(time.UTC)
	return a.Compare(b)
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }
