// Package scalar binds the contract's custom scalars to the domain's value types: Date to
// calendar.Date (YYYY-MM-DD) and Money to money.Cents (a decimal string with two fraction digits).
package scalar

import (
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/money"
)

// MarshalDate writes a Date as "YYYY-MM-DD".
func MarshalDate(d calendar.Date) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(d.String())) })
}

// UnmarshalDate reads a "YYYY-MM-DD" Date.
func UnmarshalDate(v any) (calendar.Date, error) {
	// A malformed value is the client's mistake: BAD_USER_INPUT, not an internal error (R-API-4).
	s, ok := v.(string)
	if !ok {
		return calendar.Date{}, errs.E(errs.Invalid, "a Date must be a string like \"2026-01-31\"")
	}
	d, err := calendar.Parse(s)
	if err != nil {
		return calendar.Date{}, errs.E(errs.Invalid, "%q is not a date like \"2026-01-31\"", s)
	}
	return d, nil
}

// MarshalMoney writes cents as a dollar string, e.g. "-12.00".
func MarshalMoney(c money.Cents) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(c.String())) })
}

// UnmarshalMoney reads a dollar string like "12.00" into cents.
func UnmarshalMoney(v any) (money.Cents, error) {
	s, ok := v.(string)
	if !ok {
		return 0, errs.E(errs.Invalid, "Money must be a string like \"12.00\"")
	}
	c, err := money.Parse(s)
	if err != nil {
		return 0, errs.E(errs.Invalid, "%q is not an amount like \"12.00\"", s)
	}
	return c, nil
}
