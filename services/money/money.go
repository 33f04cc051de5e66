// Package money is integer-cent money (R-ACC-3): no floating point anywhere.
package money

import (
	"fmt"
	"strconv"
	"strings"
)

// Cents is an amount of US cents.
type Cents int64

// Dollars returns whole dollars as cents.
func Dollars(d int64) Cents { return Cents(d * 100) }

// String formats the amount as dollars with exactly two fraction digits, sign first: "-12.00".
func (c Cents) String() string {
	sign, v := "", int64(c)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// Parse reads "12", "12.5", "-12.00" into cents; more than two fraction digits is an error.
func Parse(s string) (Cents, error) {
	orig := s
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || (hasFrac && (frac == "" || len(frac) > 2)) {
		return 0, fmt.Errorf("money: %q is not an amount like 12.00", orig)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseUint(whole, 10, 62)
	if err != nil {
		return 0, fmt.Errorf("money: %q is not an amount like 12.00", orig)
	}
	f, err := strconv.ParseUint(frac, 10, 8)
	if err != nil || w > (1<<62)/100 {
		return 0, fmt.Errorf("money: %q is not an amount like 12.00", orig)
	}
	v := Cents(w*100 + f)
	if neg {
		v = -v
	}
	return v, nil
}
