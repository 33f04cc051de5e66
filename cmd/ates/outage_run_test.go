package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/storage/pgtest"
)

// outageClient bounds every request: an answer that does not come within it is a hang.
var outageClient = &http.Client{Timeout: 20 * time.Second}

// TestDatabaseOutageAnswersUnavailable stops the PostgreSQL server under a running aTES (a
// throwaway server of the test's own): requests answer UNAVAILABLE with a retryAfter and a
// message a person understands, at once rather than after a hang, and /readyz answers 503
// naming the databases; once the server is back, /readyz answers 200 and requests work again
// (R-REL-4, R-API-4, R-OPS-4).
func TestDatabaseOutageAnswersUnavailable(t *testing.T) {
	srv := pgtest.Start(t)
	environ := []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(),
		"ATES_DATABASE_URL=" + srv.URL("ates"),
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}
	_, base := MustStart(t, environ)
	token, _ := mustLogin(t, base, "boss", "boss-beak-print")
	const query = `{tasks(first: 1){totalCount}}`
	if r := outageGraphQL(t, base, token, query); len(r.Errors) > 0 {
		t.Fatalf("before the outage: %v", r.Errors)
	}
	if code, _ := readyz(t, base); code != http.StatusOK {
		t.Fatalf("/readyz before the outage = %d, want 200", code)
	}

	srv.Stop(t)
	r := outageGraphQL(t, base, token, query)
	if len(r.Errors) == 0 {
		t.Fatalf("a query answered during the outage: %s", r.Data["tasks"])
	}
	e := r.Errors[0]
	if code := e.Extensions["code"]; code != "UNAVAILABLE" {
		t.Errorf("during the outage: code %v (%q), want UNAVAILABLE", code, e.Message)
	}
	if s, ok := e.Extensions["retryAfter"].(float64); !ok || s < 1 {
		t.Errorf("during the outage: retryAfter = %v, want whole seconds ≥ 1", e.Extensions["retryAfter"])
	}
	for _, leak := range []string{"pq:", "dial", "127.0.0.1", "sql", "connect:"} {
		if strings.Contains(strings.ToLower(e.Message), leak) {
			t.Errorf("the message %q shows %q", e.Message, leak)
		}
	}
	code, body := readyz(t, base)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"database:tasks":"unavailable"`) {
		t.Errorf("/readyz during the outage = %d %s, want 503 naming the tasks database", code, body)
	}

	srv.Start(t)
	waitWithin(t, 60*time.Second, "/readyz to answer 200 after the outage", func() (bool, string) {
		code, body := readyz(t, base)
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if r := outageGraphQL(t, base, token, query); len(r.Errors) > 0 {
		t.Errorf("after the outage: %v", r.Errors)
	}
}

func outageGraphQL(tb testing.TB, base, token, query string) gqlResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := outageClient.Do(req)
	if err != nil {
		tb.Fatalf("POST /graphql: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out gqlResponse
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("response %d is not JSON: %s", res.StatusCode, raw)
	}
	return out
}

func readyz(tb testing.TB, base string) (int, string) {
	tb.Helper()
	res, err := outageClient.Get(base + "/readyz")
	if err != nil {
		tb.Fatalf("GET /readyz: %v", err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.ReplaceAll(string(raw), " ", "")
}
