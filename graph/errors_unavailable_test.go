package graph

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/fault"
)

// TestPresentTemporaryFailures: a temporary failure reaches the client as UNAVAILABLE with a
// retryAfter and a message without the failure's details; other failures stay INTERNAL, and
// coded errors keep their code (R-API-4, R-REL-4).
func TestPresentTemporaryFailures(t *testing.T) {
	t.Parallel()
	present := presentError(slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	cases := []struct {
		name       string
		err        error
		code       errs.Code
		retryAfter any
	}{
		{"database restarting", fmt.Errorf("tasks: listing: %w", driver.ErrBadConn), errs.Unavailable, fault.OutageRetryAfter},
		{"deadlock", fmt.Errorf("tasks: %w", &pq.Error{Code: "40P01", Message: "deadlock detected"}), errs.Unavailable, fault.ContentionRetryAfter},
		{"a bug", errors.New("pq: column \"x\" does not exist"), errs.Internal, nil},
		{"coded unavailable", errs.Retryable(4, "the password hasher is busy"), errs.Unavailable, 4},
		{"coded not found", errs.E(errs.NotFound, "no such task"), errs.NotFound, nil},
	}
	for _, c := range cases {
		out := present(context.Background(), c.err)
		if got := out.Extensions["code"]; got != string(c.code) {
			t.Errorf("%s: code %v, want %s", c.name, got, c.code)
		}
		if got := out.Extensions["retryAfter"]; got != c.retryAfter {
			t.Errorf("%s: retryAfter %v, want %v", c.name, got, c.retryAfter)
		}
		if c.code == errs.Unavailable && c.err != nil && out.Message == c.err.Error() && !errs.Is(c.err, errs.Unavailable) {
			t.Errorf("%s: the message shows the failure: %q", c.name, out.Message)
		}
	}
}
