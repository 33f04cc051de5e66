package accounting

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
)

// TestDrawPriceRangesAndCoverage: R-ACC-1 — fee is a whole-dollar amount in [10, 20], reward in
// [20, 40], and over many seeded draws every value of both ranges comes up.
func TestDrawPriceRangesAndCoverage(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(42, 1042))
	fees, rewards := map[money.Cents]int{}, map[money.Cents]int{}
	const draws = 20_000
	for range draws {
		p := drawPrice(r)
		if p.Fee%100 != 0 || p.Reward%100 != 0 {
			t.Fatalf("price %v/%v is not whole dollars", p.Fee, p.Reward)
		}
		if p.Fee < money.Dollars(MinFee) || p.Fee > money.Dollars(MaxFee) {
			t.Fatalf("fee %v outside [%d, %d]", p.Fee, MinFee, MaxFee)
		}
		if p.Reward < money.Dollars(MinReward) || p.Reward > money.Dollars(MaxReward) {
			t.Fatalf("reward %v outside [%d, %d]", p.Reward, MinReward, MaxReward)
		}
		fees[p.Fee]++
		rewards[p.Reward]++
	}
	if len(fees) != MaxFee-MinFee+1 {
		t.Errorf("fees drawn: %d distinct values, want %d: %v", len(fees), MaxFee-MinFee+1, fees)
	}
	if len(rewards) != MaxReward-MinReward+1 {
		t.Errorf("rewards drawn: %d distinct values, want %d: %v", len(rewards), MaxReward-MinReward+1, rewards)
	}
	// Uniform: with 20 000 draws each of 11 fees is expected ~1 818 times and each of 21
	// rewards ~952 times; a value drawn less than half as often as expected is not uniform.
	for v, n := range fees {
		if n < draws/(MaxFee-MinFee+1)/2 {
			t.Errorf("fee %v drawn %d times of %d: not uniform", v, n, draws)
		}
	}
	for v, n := range rewards {
		if n < draws/(MaxReward-MinReward+1)/2 {
			t.Errorf("reward %v drawn %d times of %d: not uniform", v, n, draws)
		}
	}
}

// scriptedRand returns its values in turn (each taken modulo n).
type scriptedRand struct {
	vals []int
	ns   []int
}

func (s *scriptedRand) IntN(n int) int {
	v := s.vals[0]
	s.vals = s.vals[1:]
	s.ns = append(s.ns, n)
	return v % n
}

// TestDrawPriceBounds: R-ACC-1 — the lowest and highest draws of the source map to the ends of
// both ranges, fee drawn first, each from its own range size.
func TestDrawPriceBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		vals        []int
		fee, reward money.Cents
	}{
		{[]int{0, 0}, 1000, 2000},
		{[]int{10, 20}, 2000, 4000},
		{[]int{3, 7}, 1300, 2700},
	}
	for _, tt := range tests {
		r := &scriptedRand{vals: tt.vals}
		p := drawPrice(r)
		if p.Fee != tt.fee || p.Reward != tt.reward {
			t.Errorf("draws %v: price = %v/%v, want %v/%v", tt.vals, p.Fee, p.Reward, tt.fee, tt.reward)
		}
		if len(r.ns) != 2 || r.ns[0] != 11 || r.ns[1] != 21 {
			t.Errorf("IntN called with %v, want [11 21]", r.ns)
		}
	}
}

// TestDescribe: R-ACC-3, R-ACC-5 — the audit-log line names the task by its label, falls back to
// the task id for a task whose task.created has not arrived, and names the day of a payout.
func TestDescribe(t *testing.T) {
	t.Parallel()
	described := uuid.MustParse("6f1c1f62-3b5e-4c1e-9d7e-0d2f3b9a4c11")
	undescribed := uuid.MustParse("0b8e5d3a-7c4f-4e2a-8f61-2a9c7d5e1b22")
	labels := map[uuid.UUID]string{described: "UBERPOP-42 Fix the beak scanner"}
	day := calendar.Date{Year: 2026, Month: 11, Day: 22}
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"fee", Entry{Type: Fee, TaskID: &described, Day: day}, "Fee for task UBERPOP-42 Fix the beak scanner"},
		{"reward", Entry{Type: Reward, TaskID: &described, Day: day}, "Reward for task UBERPOP-42 Fix the beak scanner"},
		{"payout", Entry{Type: Payout, Day: day}, "Payout for 2026-11-22"},
		{"undescribed fee", Entry{Type: Fee, TaskID: &undescribed}, "Fee for task 0b8e5d3a-7c4f-4e2a-8f61-2a9c7d5e1b22"},
		{"undescribed reward", Entry{Type: Reward, TaskID: &undescribed}, "Reward for task 0b8e5d3a-7c4f-4e2a-8f61-2a9c7d5e1b22"},
		{"no labels at all", Entry{Type: Fee, TaskID: &described}, "Fee for task 6f1c1f62-3b5e-4c1e-9d7e-0d2f3b9a4c11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := labels
			if tt.name == "no labels at all" {
				l = nil
			}
			if got := describe(tt.e, l); got != tt.want {
				t.Errorf("describe = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCheckRange: R-ACC-9 — a day range is inclusive, at most MaxRangeDays long, and never
// backwards; both refusals name the field "to".
func TestCheckRange(t *testing.T) {
	t.Parallel()
	d := func(s string) calendar.Date {
		v, err := calendar.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	from := d("2026-01-01")
	tests := []struct {
		name     string
		from, to calendar.Date
		want     int // days; 0 = refused
	}{
		{"one day", from, from, 1},
		{"a week", from, d("2026-01-07"), 7},
		{"over a leap day", d("2028-02-28"), d("2028-03-01"), 3},
		{"a DST change is still whole days", d("2026-03-07"), d("2026-03-09"), 3},
		{"the longest range", from, from.AddDays(MaxRangeDays - 1), MaxRangeDays},
		{"one day too long", from, from.AddDays(MaxRangeDays), 0},
		{"backwards", from, from.AddDays(-1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := checkRange(tt.from, tt.to)
			if tt.want == 0 {
				e, ok := errs.As(err)
				if !ok || e.Code != errs.Invalid || e.Field != "to" {
					t.Fatalf("checkRange(%v, %v) = %d, %v; want BAD_USER_INPUT on to", tt.from, tt.to, n, err)
				}
				return
			}
			if err != nil || n != tt.want {
				t.Fatalf("checkRange(%v, %v) = %d, %v; want %d", tt.from, tt.to, n, err, tt.want)
			}
		})
	}
}

// TestSeeAccountAndCompany: R-ACC-5 — a WORKER or MANAGER sees only their own billing account and
// no company figures; ADMIN and ACCOUNTANT see every account and the company figures; nobody
// anonymous sees anything.
func TestSeeAccountAndCompany(t *testing.T) {
	t.Parallel()
	self, other := uuid.New(), uuid.New()
	tests := []struct {
		role                 identity.Role
		anonymous            bool
		own, others, company errs.Code // "" = allowed
	}{
		{role: identity.Worker, own: "", others: errs.Forbidden, company: errs.Forbidden},
		{role: identity.Manager, own: "", others: errs.Forbidden, company: errs.Forbidden},
		{role: identity.Admin, own: "", others: "", company: ""},
		{role: identity.Accountant, own: "", others: "", company: ""},
		{role: identity.Admin, anonymous: true, own: errs.Unauthenticated, others: errs.Unauthenticated, company: errs.Unauthenticated},
		{role: "", own: "", others: errs.Forbidden, company: errs.Forbidden},
	}
	for _, tt := range tests {
		name := string(tt.role)
		if tt.anonymous {
			name += "/anonymous"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			actor := identity.Actor{AccountID: self, Role: tt.role}
			target := self
			if tt.anonymous {
				actor.AccountID = uuid.Nil
			}
			if got := errs.CodeOf(seeAccount(actor, target)); got != tt.own {
				t.Errorf("own account: code %q, want %q", got, tt.own)
			}
			if got := errs.CodeOf(seeAccount(actor, other)); got != tt.others {
				t.Errorf("another account: code %q, want %q", got, tt.others)
			}
			if got := errs.CodeOf(seeCompany(actor)); got != tt.company {
				t.Errorf("company figures: code %q, want %q", got, tt.company)
			}
		})
	}
}
