package page

import (
	"testing"

	"github.com/uberpopug/ates/services/errs"
)

func ptr[T any](v T) *T { return &v }

func TestParse(t *testing.T) {
	t.Parallel()
	r, err := Parse(nil, nil)
	if err != nil || r.First != DefaultFirst || r.After != 0 {
		t.Errorf("defaults = %+v, %v", r, err)
	}
	r, err = Parse(ptr(100), ptr(EncodeCursor(42)))
	if err != nil || r.First != 100 || r.After != 42 {
		t.Errorf("first 100 after 42 = %+v, %v", r, err)
	}
	if r, err := Parse(ptr(0), ptr("")); err != nil || r.First != 0 || r.After != 0 {
		t.Errorf("first 0, empty after = %+v, %v", r, err)
	}
	for name, c := range map[string]struct {
		first *int
		after *string
		field string
	}{
		"first above 100": {ptr(101), nil, "first"},
		"negative first":  {ptr(-1), nil, "first"},
		"garbage cursor":  {nil, ptr("%%%"), "after"},
		"foreign base64":  {nil, ptr("aGVsbG8"), "after"},
		"zero key":        {nil, ptr(EncodeCursor(0)), "after"},
	} {
		_, err := Parse(c.first, c.after)
		e, ok := errs.As(err)
		if !ok || e.Code != errs.Invalid || e.Field != c.field {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTotal: R-API-5 — a page counts its list only for a caller that reads the total.
func TestTotal(t *testing.T) {
	t.Parallel()
	calls := 0
	count := func() (int, error) { calls++; return 7, nil }
	if n, err := Total(Request{First: 5}, count); n != 7 || err != nil || calls != 1 {
		t.Errorf("with the total: %d, %v after %d calls", n, err, calls)
	}
	if n, err := Total(Request{First: 5, NoTotal: true}, count); n != 0 || err != nil || calls != 1 {
		t.Errorf("without the total: %d, %v after %d calls", n, err, calls)
	}
}
