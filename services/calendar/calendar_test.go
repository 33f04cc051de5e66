package calendar

import (
	"testing"
	"time"
)

func TestDateOfUsesTheTimezone(t *testing.T) {
	t.Parallel()
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 31, 23, 30, 0, 0, time.UTC)
	if got := DateOf(at, time.UTC).String(); got != "2026-12-31" {
		t.Errorf("UTC: %s", got)
	}
	if got := DateOf(at, tokyo).String(); got != "2027-01-01" {
		t.Errorf("Tokyo: %s", got)
	}
	if got := (Date{2027, 1, 1}).Start(tokyo); !got.Equal(time.Date(2026, 12, 31, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("Start in Tokyo = %v", got)
	}
}

func TestParseAndArithmetic(t *testing.T) {
	t.Parallel()
	d, err := Parse("2024-02-28")
	if err != nil {
		t.Fatal(err)
	}
	if got := d.AddDays(1).String(); got != "2024-02-29" {
		t.Errorf("leap day: %s", got)
	}
	if got := d.AddDays(2).String(); got != "2024-03-01" {
		t.Errorf("after leap day: %s", got)
	}
	if got := d.AddDays(-59).String(); got != "2023-12-31" {
		t.Errorf("back over a year: %s", got)
	}
	if !d.Before(d.AddDays(1)) || d.AddDays(1).Before(d) || d.Compare(d) != 0 {
		t.Error("ordering is wrong")
	}
	for _, s := range []string{"", "2024-2-28", "2024-02-30", "28.02.2024", "2024-02-28T00:00:00Z"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	if !(Date{}).IsZero() || d.IsZero() {
		t.Error("IsZero is wrong")
	}
}
