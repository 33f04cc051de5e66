package money

import "testing"

func TestString(t *testing.T) {
	t.Parallel()
	for c, want := range map[Cents]string{0: "0.00", 1: "0.01", -1: "-0.01", 1200: "12.00", -1550: "-15.50", 123456789: "1234567.89"} {
		if got := c.String(); got != want {
			t.Errorf("Cents(%d) = %q, want %q", int64(c), got, want)
		}
	}
	if Dollars(35) != 3500 {
		t.Errorf("Dollars(35) = %d", Dollars(35))
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	good := map[string]Cents{"12": 1200, "12.5": 1250, "12.05": 1205, "-12.00": -1200, "0.01": 1, "-0.5": -50}
	for s, want := range good {
		if got, err := Parse(s); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "-", "12.", ".5", "12.345", "1e3", "12,00", "abc", "--1", "1.-5", "99999999999999999999"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	for _, c := range []Cents{0, 1, -1, 99, -12345} {
		if got, err := Parse(c.String()); err != nil || got != c {
			t.Errorf("round trip %d: %d, %v", c, got, err)
		}
	}
}
