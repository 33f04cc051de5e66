// Package scalar binds the contract's custom scalars to the domain's value types: Date to
// calendar.Date (YYYY-MM-DD) and Money to money.Cents (a decimal string with two fraction digits).
package scalar

import (
	"fmt"
	"io"
	"strconv"

	"github.com/99designs/gqlgen/graphql"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/money"
)

// MarshalDate writes a Date as "YYYY-MM-DD".
func MarshalDate(d calendar.Date) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(d.String())) })
}

// UnmarshalDate reads a "YYYY-MM-DD" Date.
func UnmarshalDate(v any) (calendar.Date, error) {
	s, ok := v.(string)
	if !ok {
		return calendar.Date{}, fmt.Errorf("a Date must be a string like \"2026-01-31\"")
	}
	return calendar.Parse(s)
}

// MarshalMoney writes cents as a dollar string, e.g. "-12.00".
func MarshalMoney(c money.Cents) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(c.String())) })
}

// UnmarshalMoney reads a dollar string like "12.00" into cents.
func UnmarshalMoney(v any) (money.Cents, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("Money must be a string like \"12.00\"")
	}
	return money.Parse(s)
}
