package graph_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/security"
)

// The hostile requests of R-SEC-2: documents of a few kilobytes that buy quadratic or
// exponential work in validation unless refused before it.
var hostileDocuments = []struct {
	name, query, want string
}{
	{"3 000 repeated fields", "{ me { " + strings.Repeat("id ", 3000) + "} }", "fields once its fragments are expanded"},
	{"1 500 repeated fields", "{ me { " + strings.Repeat("id ", 1500) + "} }", `asks for "id" more than 10 times`},
	{"1 500 repeated __typename", "{ " + strings.Repeat("__typename ", 1500) + "}", `asks for "__typename" more than 10 times`},
	{"100 000 repeated fields", "{ me { " + strings.Repeat("id ", 100_000) + "} }", "more than 10000 tokens"},
	{"fragment doubling, 26 levels", fragmentDoubling(26), "fields once its fragments are expanded"},
	{"300 spreads of one fragment", "{ " + strings.Repeat("...A ", 300) + "} fragment A on Query { __typename }", "spreads fragments 300 times"},
	{"repeats multiplied by nesting", nestedRepeats(10, 3), "more than 10 times"},
	{"500 login aliases", "mutation { " + loginAliases(500) + " }", "aliased fields"},
	{"two logins", "mutation { " + loginAliases(2) + " }", "login 2 times"},
	{"two sign-ups through a fragment", `mutation { ...S ...S } fragment S on Mutation { signUp(input: {username: "a", password: "b", fullName: "c", email: "d"}) { token } }`, "signUp 2 times"},
	{"50 000 unknown directives", "{ __typename " + strings.Repeat("@a ", 50_000) + "}", "more than 10000 tokens"},
	{"60 unknown directives", "{ __typename " + strings.Repeat("@a ", 60) + "}", "60 directives"},
	{"150 aliases", "{ " + aliases(150) + " }", "150 aliased fields"},
	{"deep nesting", "{ " + strings.Repeat("a { ", 40) + "b" + strings.Repeat(" }", 40) + " }", "more than 12 fields deep"},
}

// fragmentDoubling is a document whose each fragment spreads the next twice: 2^levels spreads
// once expanded, in about 60 bytes per level.
func fragmentDoubling(levels int) string {
	var b strings.Builder
	b.WriteString("query { ...F0 }\n")
	for i := range levels {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { __typename }\n", levels)
	return b.String()
}

// nestedRepeats repeats a field r times at each of levels levels: r^levels fields on one path,
// each set within the per-set repeat bound.
func nestedRepeats(r, levels int) string {
	inner := "id"
	for range levels {
		inner = "me { " + strings.TrimSpace(strings.Repeat(inner+" ", r)) + " }"
	}
	return "{ " + inner + " }"
}

func loginAliases(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `l%d: login(username: "root", password: "guess-%d") { token } `, i, i)
	}
	return b.String()
}

func aliases(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "a%d: __typename ", i)
	}
	return b.String()
}

// serve runs one anonymous POST through the handler in-process and returns the response.
func serve(h http.Handler, query string) *httptest.ResponseRecorder {
	body, _ := json.Marshal(map[string]any{"query": query})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// allocBudget is ten times what refusing the costliest of these documents allocates now (the
// 100 000 repeated fields, 20 000 allocations: it is read and parsed up to the token limit), and
// a hundredth of what validating 3 000 repeated fields allocated before documents were checked
// up front (22.5 million; docs/benchmarks.md).
const allocBudget = 200_000

// TestHostileDocumentsAreRefusedBeforeValidation: R-SEC-2 — each document is refused with
// BAD_USER_INPUT naming the limit, anonymously, and the work spent on it is bounded: counted in
// allocations, which the quadratic and exponential paths multiply, not in time.
func TestHostileDocumentsAreRefusedBeforeValidation(t *testing.T) {
	g := MustGateway(t) // not parallel: AllocsPerRun counts the whole process
	for _, c := range hostileDocuments {
		t.Run(c.name, func(t *testing.T) {
			before := security.Count(security.LimitExceeded)
			r := g.Query(t, "", c.query, nil)
			e := r.MustError(t, "BAD_USER_INPUT")
			if !strings.Contains(e.Message, c.want) {
				t.Fatalf("message %q does not say %q", e.Message, c.want)
			}
			if security.Count(security.LimitExceeded) <= before {
				t.Error("the refusal was not recorded as a security event (R-SEC-7)")
			}
			allocs := testing.AllocsPerRun(2, func() { serve(g.Handler, c.query) })
			if allocs > allocBudget {
				t.Fatalf("refusing the document took %.0f allocations; the budget is %d", allocs, allocBudget)
			}
		})
	}
}

// TestDocumentsWithinTheLimitsStillWork: the limits leave room for real clients — GraphiQL's
// introspection query (for an admin) and a board page of 100 tasks with every field.
func TestDocumentsWithinTheLimitsStillWork(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	g.Query(t, g.AdminToken, graphiqlIntrospection, nil).MustOK(t, nil)
	board := `query { tasks(first: 100) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
		edges { cursor node { id title jiraId description status createdAt completedAt
			assignee { id username fullName email role active createdAt } } } } }`
	g.Query(t, g.AdminToken, board, nil).MustOK(t, nil)
	// A field asked a few times at one place (fragments overlapping) is fine.
	g.Query(t, g.AdminToken, `{ me { id ...A ...B } } fragment A on Account { id username } fragment B on Account { id role }`, nil).MustOK(t, nil)
}

// TestComplexityCountsListSizes: R-SEC-2 — a page of 100 billing accounts with 100 entries
// each is 10 000 entries: refused, though its fields are few; the same with small pages runs.
func TestComplexityCountsListSizes(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	q := func(first int) string {
		return fmt.Sprintf(`{ billingAccounts(first: %d) { edges { node { balance entries(first: %d) { edges { node { id amount } } } } } } }`, first, first)
	}
	e := g.Query(t, g.AdminToken, q(100), nil).MustError(t, "BAD_USER_INPUT")
	if !strings.Contains(e.Message, "complexity") {
		t.Fatalf("refusal %q does not name the complexity", e.Message)
	}
	r := g.Query(t, g.AdminToken, q(5), nil)
	for _, e := range r.Errors {
		if strings.Contains(e.Message, "complexity") {
			t.Fatalf("a small query was refused: %s", r.Body)
		}
	}
	// A day range counts its days: a year is fine, nine years in one request are not.
	year := func(alias string, y int) string {
		return fmt.Sprintf(`%s: managementEarnings(from: "%d-01-01", to: "%d-12-31") { date managementEarnings } `, alias, y, y)
	}
	r = g.Query(t, g.AdminToken, "{ "+year("y", 2026)+"}", nil)
	for _, e := range r.Errors {
		if strings.Contains(e.Message, "complexity") {
			t.Fatalf("a year of days was refused: %s", r.Body)
		}
	}
	var years strings.Builder
	for i := range 9 {
		years.WriteString(year(fmt.Sprintf("y%d", i), 2017+i))
	}
	e = g.Query(t, g.AdminToken, "{ "+years.String()+"}", nil).MustError(t, "BAD_USER_INPUT")
	if !strings.Contains(e.Message, "complexity") {
		t.Fatalf("nine years refused for %q", e.Message)
	}
}

// TestNoSuggestionsOutsideDevelopment: R-SEC-4 — "Did you mean" names parts of the schema.
func TestNoSuggestionsOutsideDevelopment(t *testing.T) {
	t.Parallel()
	for _, dev := range []bool{false, true} {
		var opts []GatewayOption
		if dev {
			opts = append(opts, DevMode())
		}
		g := MustGateway(t, opts...)
		for _, q := range []string{`{ tsks { totalCount } }`, `{ tasks(statuss: OPEN) { totalCount } }`, `{ tasks(status: OPN) { totalCount } }`} {
			r := g.Query(t, "", q, nil)
			r.MustError(t, "BAD_USER_INPUT")
			if got := strings.Contains(r.Body, "Did you mean"); got != dev {
				t.Errorf("dev=%v: suggestions shown = %v: %s", dev, got, r.Body)
			}
		}
	}
}

// TestErrorsAreCapped: R-SEC-2 — a document with a hundred errors gets twenty and a count.
func TestErrorsAreCapped(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	var b strings.Builder
	for i := range 90 {
		fmt.Fprintf(&b, "f%d ", i)
	}
	r := g.Query(t, "", "{ "+b.String()+"}", nil)
	r.MustError(t, "BAD_USER_INPUT")
	if len(r.Errors) != 21 || r.Errors[20].Message != "and 70 more errors" {
		t.Fatalf("got %d errors, the last %q", len(r.Errors), r.Errors[len(r.Errors)-1].Message)
	}
}

// TestResponsesAreCapped: R-SEC-2 — a response larger than the cap is replaced by an error.
func TestResponsesAreCapped(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithLimits(graph.Limits{ResponseBytes: 200}))
	g.Query(t, g.AdminToken, `{ me { id } }`, nil).MustOK(t, nil)
	e := g.Query(t, g.AdminToken, `{ accounts(first: 100) { edges { node { id username fullName email role createdAt } } } }`, nil).MustError(t, "BAD_USER_INPUT")
	if !strings.Contains(e.Message, "larger than 200 bytes") {
		t.Fatalf("message %q", e.Message)
	}
}

// TestEveryAnswerOfGraphQLIsCodedJSON: R-SEC-4, R-API-4 — requests no transport serves are
// answered with a coded JSON error and a truthful Allow, and nothing a request sent is echoed.
func TestEveryAnswerOfGraphQLIsCodedJSON(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	secret := "hunter2-beak-print"
	cases := []struct {
		name, method, contentType, body string
		status                          int
	}{
		{"PUT", http.MethodPut, "application/json", `{"query":"{ me { id } }"}`, http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, "", "", http.StatusMethodNotAllowed},
		{"POST as text", http.MethodPost, "text/plain", `{"query":"{ me { id } }"}`, http.StatusUnsupportedMediaType},
		{"POST as a form", http.MethodPost, "application/x-www-form-urlencoded", "query=%7B+me+%7B+id+%7D+%7D", http.StatusUnsupportedMediaType},
		{"malformed JSON", http.MethodPost, "application/json", `{"query": "mutation { login(username: \"root\", password: \"` + secret + `\") { token } }"`, http.StatusBadRequest},
		{"JSON but no query", http.MethodPost, "application/json", `{"password":"` + secret + `"}`, http.StatusBadRequest},
		{"GET without query", http.MethodGet, "", "", http.StatusBadRequest},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, g.URL+"/graphql", strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, resp.StatusCode, c.status, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: content type %q", c.name, ct)
		}
		var r Response
		if err := json.Unmarshal(raw, &r); err != nil || len(r.Errors) == 0 {
			t.Errorf("%s: not a GraphQL error: %s", c.name, raw)
			continue
		}
		if code, _ := r.Errors[0].Extensions["code"].(string); code != "BAD_USER_INPUT" {
			t.Errorf("%s: code %q: %s", c.name, code, raw)
		}
		if strings.Contains(string(raw), secret) {
			t.Errorf("%s: the answer echoes the request: %s", c.name, raw)
		}
		if c.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != "GET, POST, OPTIONS" {
			t.Errorf("%s: Allow %q", c.name, resp.Header.Get("Allow"))
		}
	}
	// OPTIONS tells the truth.
	req, _ := http.NewRequest(http.MethodOptions, g.URL+"/graphql", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Allow") != "GET, POST, OPTIONS" {
		t.Errorf("OPTIONS: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestQueriesOverGET: R-API-2 as mainstream clients use it — queries as GET; a mutation over
// GET is refused and has no effect.
func TestQueriesOverGET(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	get := func(query string) Response {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/graphql?query="+url.QueryEscape(query), nil)
		req.Header.Set("Authorization", "Bearer "+g.AdminToken)
		return mustDo(t, req)
	}
	var me struct{ Me struct{ Username string } }
	get(`{ me { username } }`).MustOK(t, &me)
	if me.Me.Username != "root" {
		t.Fatalf("me = %+v", me)
	}
	r := get(`mutation { createAccount(input: {username: "viaget", password: "beak-print-1", fullName: "Via Get", email: "g@uberpopug.com", role: WORKER}) { id } }`)
	r.MustError(t, "BAD_USER_INPUT")
	if r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("status %d", r.Status)
	}
	var accs struct{ Accounts struct{ TotalCount int } }
	g.Query(t, g.AdminToken, `{ accounts { totalCount } }`, nil).MustOK(t, &accs)
	if accs.Accounts.TotalCount != 1 {
		t.Fatalf("the GET mutation ran: %d accounts", accs.Accounts.TotalCount)
	}
}

// TestBrowserOpeningGraphQLIsShownTheExplorer: a person typing /graphql into a browser gets
// the explorer, not "transport not supported".
func TestBrowserOpeningGraphQLIsShownTheExplorer(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	req, _ := http.NewRequest(http.MethodGet, g.URL+"/graphql", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/graphiql" {
		t.Fatalf("%d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestCrossOriginRequests: R-SEC-5 of the HTTP conventions — CORS headers only for the listed
// origins, with credentials; a foreign page gets none.
func TestCrossOriginRequests(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithOrigins("app.uberpopug.com"))
	for _, c := range []struct {
		origin string
		allow  bool
	}{{"https://app.uberpopug.com", true}, {"https://evil.example", false}} {
		pre, _ := http.NewRequest(http.MethodOptions, g.URL+"/graphql", nil)
		pre.Header.Set("Origin", c.origin)
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		resp, err := http.DefaultClient.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := resp.Header.Get("Access-Control-Allow-Origin")
		if c.allow && (got != c.origin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")) {
			t.Errorf("%s: preflight headers %v", c.origin, resp.Header)
		}
		if !c.allow && got != "" {
			t.Errorf("%s: allowed as %q", c.origin, got)
		}
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/graphql?query="+url.QueryEscape("{ __typename }"), nil)
		req.Header.Set("Origin", c.origin)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (got != "") != c.allow {
			t.Errorf("%s: GET answered with Access-Control-Allow-Origin %q", c.origin, got)
		}
	}
}

// TestStalledBodyTimesOut: R-SEC-2 — a client that sends headers and then stalls mid-body is
// answered and let go at the body deadline, not held forever.
func TestStalledBodyTimesOut(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithLimits(graph.Limits{BodyTimeout: 200 * time.Millisecond}))
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"query\":")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound, far above the limit
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestMetricsOnTheirOwnListener: R-SEC-8 — with ATES_METRICS_ADDR the public handler has no
// /metrics.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	if resp, _ := MustGateway(t).Get(t, "/metrics"); resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d without a listener of its own", resp.StatusCode)
	}
	if resp, _ := MustGateway(t, WithMetricsElsewhere()).Get(t, "/metrics"); resp.StatusCode == http.StatusOK {
		t.Fatal("/metrics is served on the public handler though it has a listener of its own")
	}
}

// dialWSWithHeader opens a WebSocket authenticated by the upgrade request's header.
func dialWSWithHeader(tb testing.TB, g *Gateway, p wsProtocol, token string) *wsClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(g.URL, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		Subprotocols: []string{p.name}, HTTPHeader: http.Header{"Authorization": {"Bearer " + token}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	tb.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return &wsClient{p: p, conn: conn}
}

// TestWebSocketFollowsTheAccountsRightsNow: R-SEC-1 — an admin's socket, authenticated either
// way, over either subprotocol, loses its powers as soon as the gateway knows the admin was
// demoted and deactivated: a new operation is refused at once (and the socket closed), and a
// running subscription ends with UNAUTHENTICATED without waiting for the keep-alive.
func TestWebSocketFollowsTheAccountsRightsNow(t *testing.T) {
	t.Parallel()
	for _, p := range wsProtocols {
		for _, how := range []string{"header", "connection_init"} {
			for _, after := range []string{"new operation", "running subscription"} {
				t.Run(p.name+"/"+how+"/"+after, func(t *testing.T) {
					t.Parallel()
					// A running subscription is re-checked often; for a new operation the re-check is
					// kept out of the way, so that the refusal comes from the operation's own check.
					recheck := 50 * time.Millisecond
					if after == "new operation" {
						recheck = time.Hour
					}
					g := MustGateway(t, WithLimits(graph.Limits{AuthRecheck: recheck}))
					boss := g.MustUser(t, "boss", identity.Admin)
					var c *wsClient
					if how == "header" {
						c = dialWSWithHeader(t, g, p, boss.Token)
						c.init(t, "")
					} else {
						c = MustDialWS(t, g, p)
						c.init(t, boss.Token)
					}
					if _, errs := c.operation(t, "me", `{ me { username } }`); len(errs) > 0 {
						t.Fatalf("before: %+v", errs)
					}
					c.subscribeBalance(t, g, "live", 1)
					g.Query(t, g.AdminToken, `mutation($id: ID!) { changeRole(accountId: $id, role: WORKER) { id } }`, map[string]any{"id": boss.ID}).MustOK(t, nil)
					g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": boss.ID}).MustOK(t, nil)
					g.FeedEvents(t) // the gateway hears of it
					g.Query(t, boss.Token, `{ me { id } }`, nil).MustError(t, "UNAUTHENTICATED")

					if after == "new operation" {
						c.send(t, map[string]any{"id": "escalate", "type": p.subscribe, "payload": map[string]any{
							"query": `mutation { createAccount(input: {username: "mole", password: "beak-print-1", fullName: "Mole", email: "m@uberpopug.com", role: ADMIN}) { id } }`,
						}})
					}
					got := map[string]string{}
					for len(got) < map[bool]int{true: 2, false: 1}[after == "new operation"] {
						m, err := c.recv(t)
						if err != nil {
							t.Fatalf("socket ended before every operation got its error (%v): %v", got, err)
						}
						if m.Type != p.errType {
							t.Fatalf("unexpected %+v", m)
						}
						var list []GQLError
						if err := json.Unmarshal(m.Payload, &list); err != nil || len(list) == 0 {
							t.Fatalf("error payload %s", m.Payload)
						}
						got[m.ID], _ = list[0].Extensions["code"].(string)
					}
					for id, code := range got {
						if code != "UNAUTHENTICATED" {
							t.Errorf("operation %s ended with %q", id, code)
						}
					}
					c.mustClosedWith(t, 4403)
					var n struct{ Accounts struct{ TotalCount int } }
					g.Query(t, g.AdminToken, `{ accounts { totalCount } }`, nil).MustOK(t, &n)
					if n.Accounts.TotalCount != 2 {
						t.Fatalf("%d accounts: the revoked socket created one", n.Accounts.TotalCount)
					}
				})
			}
		}
	}
}

// TestWebSocketHasOneCredential: R-SEC-1 — a socket is bound to one account: an upgrade
// header and a connection_init payload naming different tokens are refused.
func TestWebSocketHasOneCredential(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "kiwi", identity.Worker)
	for _, p := range wsProtocols {
		c := dialWSWithHeader(t, g, p, w.Token)
		c.send(t, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + g.AdminToken}})
		c.mustClosedWith(t, 4403)
	}
}

// FuzzCheckDocument: whatever the document, the check neither panics nor accepts a document
// that expands beyond the field limit.
func FuzzCheckDocument(f *testing.F) {
	for _, c := range hostileDocuments {
		if len(c.query) < 4096 {
			f.Add(c.query)
		}
	}
	f.Add(graphiqlIntrospection)
	f.Add(`{ me { id ...A } } fragment A on Account { id ...A }`)
	lim := graph.DocumentLimits{Fields: 300, Spreads: 50, Tokens: 2000}
	f.Fuzz(func(t *testing.T, q string) {
		if err := lim.CheckDocument(q); err != nil {
			return
		}
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			return
		}
		if n := expandedFields(doc, 301); n > 300 {
			t.Fatalf("accepted a document of %d expanded fields", n)
		}
	})
}

// expandedFields counts an operation's fields with fragments expanded, the naive way, stopping
// past budget.
func expandedFields(doc *ast.QueryDocument, budget int) int {
	n := 0
	var walk func(set ast.SelectionSet, depth int)
	walk = func(set ast.SelectionSet, depth int) {
		for _, sel := range set {
			if n > budget || depth > 64 {
				return
			}
			switch v := sel.(type) {
			case *ast.Field:
				n++
				walk(v.SelectionSet, depth+1)
			case *ast.InlineFragment:
				walk(v.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if f := doc.Fragments.ForName(v.Name); f != nil {
					walk(f.SelectionSet, depth+1)
				}
			}
		}
	}
	for _, op := range doc.Operations {
		walk(op.SelectionSet, 0)
	}
	return n
}

// BenchmarkHostileDocuments is what each hostile document costs the gateway to answer
// (docs/benchmarks.md).
func BenchmarkHostileDocuments(b *testing.B) {
	g := MustGateway(b)
	for _, c := range hostileDocuments {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				serve(g.Handler, c.query)
			}
		})
	}
}

// graphiqlIntrospection is the introspection query GraphiQL sends (graphql-js
// getIntrospectionQuery with descriptions, specifiedByURL, isRepeatable and input deprecation).
const graphiqlIntrospection = `
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}`
