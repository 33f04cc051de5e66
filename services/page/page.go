// Package page is the cursor pagination of R-API-5: first defaults to 20, above 100 is refused,
// cursors are opaque.
package page

import (
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/uberpopug/ates/services/errs"
)

// Limits of R-API-5.
const (
	DefaultFirst = 20
	MaxFirst     = 100
)

// Request is a validated page request: at most First items after the item with key After.
type Request struct {
	First int
	// After is the key of the last item already seen; 0 means from the start.
	After int64
	// NoTotal says the caller does not read the page's TotalCount (a client that did not select
	// totalCount), so the list need not count: counting can cost more than the page itself.
	NoTotal bool
}

// Total returns count's result when the request reads the total, and 0 without calling it
// otherwise.
func Total(r Request, count func() (int, error)) (int, error) {
	if r.NoTotal {
		return 0, nil
	}
	return count()
}

// Parse validates first/after arguments into a Request.
func Parse(first *int, after *string) (Request, error) {
	r := Request{First: DefaultFirst}
	if first != nil {
		switch {
		case *first < 0:
			return r, errs.InvalidField("first", "first must not be negative")
		case *first > MaxFirst:
			return r, errs.InvalidField("first", "first must be at most %d", MaxFirst)
		}
		r.First = *first
	}
	if after != nil && *after != "" {
		k, err := DecodeCursor(*after)
		if err != nil {
			return r, err
		}
		r.After = k
	}
	return r, nil
}

const cursorPrefix = "c:"

// EncodeCursor returns the opaque cursor of an item key.
func EncodeCursor(key int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(key, 10)))
}

// DecodeCursor returns the item key of a cursor made by EncodeCursor.
func DecodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), cursorPrefix); ok {
			if k, err := strconv.ParseInt(s, 10, 64); err == nil && k > 0 {
				return k, nil
			}
		}
	}
	return 0, errs.InvalidField("after", "after is not a cursor returned by this list")
}

// Page is one page of items with what a Relay connection needs.
type Page[T any] struct {
	Items []T
	Keys  []int64
	// TotalCount is how many items the whole list holds; 0 when the request had NoTotal.
	TotalCount int
	HasNext    bool
	HasPrev    bool
}
