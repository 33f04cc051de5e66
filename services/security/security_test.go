package security_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/uberpopug/ates/services/security"
)

// TestRecordLogsAndCounts: R-SEC-7 — an event is one structured line naming its kind, and
// one more in its counter.
func TestRecordLogsAndCounts(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	before := security.Count(security.LoginFailed)
	security.Record(context.Background(), log, security.LoginFailed, "login failed", "username", "popug")
	if got := security.Count(security.LoginFailed) - before; got != 1 {
		t.Fatalf("counter moved by %v, want 1", got)
	}
	line := buf.String()
	for _, want := range []string{`"security":"login_failed"`, `"username":"popug"`, `"level":"WARN"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %s lacks %s", line, want)
		}
	}
}
