package graph_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
)

// TestInternalErrorsDoNotLeak: R-API-4 — a failure below the API is "internal error" with code
// INTERNAL; the detail goes to the log, never to the client.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "popug", identity.Worker)
	if err := g.DB.Close(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		token, query string
		vars         map[string]any
	}{
		{w.Token, meQuery, nil},
		{g.AdminToken, accountsQuery, nil},
		{"", loginMutation, map[string]any{"u": "popug", "p": "beak-popug"}},
		{"", signUpMutation, signUpInput("late")},
	} {
		r := g.Query(t, q.token, q.query, q.vars)
		e := r.MustError(t, "INTERNAL")
		if e.Message != "internal error" {
			t.Fatalf("message = %q, want \"internal error\"", e.Message)
		}
		low := strings.ToLower(r.Body)
		for _, leak := range []string{"sql", "database", "closed", "goroutine", ".go:", "auth:", "select"} {
			if strings.Contains(low, leak) {
				t.Fatalf("the response leaks %q: %s", leak, r.Body)
			}
		}
		if len(e.Extensions) != 1 {
			t.Fatalf("extensions = %v, want only the code", e.Extensions)
		}
	}
	if logs := g.Logs.String(); !strings.Contains(logs, "database is closed") || !strings.Contains(logs, "internal error") {
		t.Fatalf("the log lacks the detail of the internal error:\n%s", logs)
	}
}

// TestRequestErrorsAreBadUserInput: parse, validation and coercion errors carry BAD_USER_INPUT.
func TestRequestErrorsAreBadUserInput(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	tests := []struct {
		name, query string
		vars        map[string]any
	}{
		{"syntax error", `{ me { id `, nil},
		{"empty document", ``, nil},
		{"unknown field", `{ me { id password } }`, nil},
		{"unknown operation", `{ everything }`, nil},
		{"missing selection", `{ me }`, nil},
		{"missing required argument", `mutation { login(username: "root") { token } }`, nil},
		{"argument of the wrong type", `{ accounts(first: "ten") { totalCount } }`, nil},
		{"variable of the wrong type", `query($f: Int) { accounts(first: $f) { totalCount } }`, map[string]any{"f": "ten"}},
		{"fractional Int", `query($f: Int) { accounts(first: $f) { totalCount } }`, map[string]any{"f": 1.5}},
		{"Int overflow", `query($f: Int) { accounts(first: $f) { totalCount } }`, map[string]any{"f": 1e12}},
		{"unknown enum value", `query($r: Role) { accounts(role: $r) { totalCount } }`, map[string]any{"r": "ROOT"}},
		{"undeclared variable", `{ accounts(first: $f) { totalCount } }`, nil},
		{"missing required variable", `query($u: String!) { me { id } }`, nil},
		{"malformed Date literal", `{ managementEarnings(from: "yesterday", to: "2026-03-01") { date } }`, nil},
		{"malformed Date variable", `query($d: Date!) { managementEarnings(from: $d, to: $d) { date } }`, map[string]any{"d": "2026-02-30"}},
		{"Date of the wrong type", `query($d: Date!) { mostExpensiveTask(from: $d, to: $d) { from } }`, map[string]any{"d": 20260301}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := g.Query(t, g.AdminToken, tt.query, tt.vars)
			e := r.MustError(t, "BAD_USER_INPUT")
			if strings.Contains(e.Message, "internal") {
				t.Fatalf("message = %q", e.Message)
			}
		})
	}
	t.Run("body that is not JSON", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodPost, g.URL+"/graphql", strings.NewReader(`{"query": `))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		mustDo(t, req).MustError(t, "BAD_USER_INPUT")
	})
}

const introspectionQuery = `{ __schema { queryType { name } mutationType { name } types { name } } }`

func TestIntrospection(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	dev := MustGateway(t, DevMode())
	worker := g.MustUser(t, "popug", identity.Worker).Token
	devWorker := dev.MustUser(t, "popug", identity.Worker).Token

	allowed := func(t *testing.T, g *Gateway, token, query string) {
		t.Helper()
		var data struct {
			Schema struct {
				QueryType struct{ Name string } `json:"queryType"`
				Types     []struct{ Name string }
			} `json:"__schema"`
			Type *struct{ Name string } `json:"__type"`
		}
		g.Query(t, token, query, nil).MustOK(t, &data)
		if data.Schema.QueryType.Name != "Query" && (data.Type == nil || data.Type.Name != "Account") {
			t.Fatalf("introspection answered %+v", data)
		}
	}
	typeQuery := `{ __type(name: "Account") { name fields { name } } }`
	fragmentQuery := `query { ...F } fragment F on Query { __schema { queryType { name } } }`
	for _, q := range []string{introspectionQuery, typeQuery, fragmentQuery} {
		// R-API-3: only ADMIN tokens, unless in development mode.
		for _, token := range []string{worker, g.MustUser(t, "boss"+string(rune('a'+len(q)%26)), identity.Manager).Token, ""} {
			e := g.Query(t, token, q, nil).MustError(t, "FORBIDDEN")
			if !strings.Contains(e.Message, "introspection") {
				t.Fatalf("message = %q", e.Message)
			}
		}
		allowed(t, g, g.AdminToken, q)
		allowed(t, dev, devWorker, q)
		allowed(t, dev, "", q)
	}
	// __typename is not introspection.
	var tn struct {
		Me struct {
			Typename string `json:"__typename"`
		}
	}
	g.Query(t, worker, `{ me { __typename } }`, nil).MustOK(t, &tn)
	if tn.Me.Typename != "Account" {
		t.Fatalf("__typename = %q", tn.Me.Typename)
	}
}

func TestDepthAndComplexityLimits(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithLimits(graph.Limits{Depth: 3, Complexity: 8}))
	// accounts > edges > node > id is 4 deep.
	e := g.Query(t, g.AdminToken, `{ accounts { edges { node { id } } } }`, nil).MustError(t, "BAD_USER_INPUT")
	if !strings.Contains(e.Message, "deep") {
		t.Fatalf("depth message = %q", e.Message)
	}
	// Fragments do not hide depth.
	g.Query(t, g.AdminToken, `{ accounts { ...E } } fragment E on AccountConnection { edges { node { id } } }`, nil).MustError(t, "BAD_USER_INPUT")
	g.Query(t, g.AdminToken, `{ me { id username } }`, nil).MustOK(t, nil)
	// Many cheap fields exceed the complexity budget.
	g.Query(t, g.AdminToken, `{ a: me { id } b: me { id } c: me { id } d: me { id } e: me { id } }`, nil).MustError(t, "BAD_USER_INPUT")
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithLimits(graph.Limits{BodyBytes: 2048}))
	big, err := json.Marshal(map[string]any{"query": `{ me { id } }`, "variables": map[string]any{"pad": strings.Repeat("x", 4096)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("declared length", func(t *testing.T) {
		t.Parallel()
		req, err := http.NewRequest(http.MethodPost, g.URL+"/graphql", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.AdminToken)
		r := mustDo(t, req)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", r.Status)
		}
		r.MustError(t, "BAD_USER_INPUT")
	})
	t.Run("chunked", func(t *testing.T) {
		t.Parallel()
		// An io.Reader of unknown length makes the client send the body chunked.
		req, err := http.NewRequest(http.MethodPost, g.URL+"/graphql", io.MultiReader(bytes.NewReader(big)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.AdminToken)
		if req.ContentLength != 0 {
			t.Fatalf("the request declares a length (%d)", req.ContentLength)
		}
		r := mustDo(t, req)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413: %s", r.Status, r.Body)
		}
		r.MustError(t, "BAD_USER_INPUT")
	})
	t.Run("within the limit", func(t *testing.T) {
		t.Parallel()
		g.Query(t, g.AdminToken, `{ me { id } }`, map[string]any{"pad": strings.Repeat("x", 1024)}).MustOK(t, nil)
	})
	t.Run("chunked within the limit", func(t *testing.T) {
		t.Parallel()
		small := []byte(`{"query":"{ me { username } }"}`)
		req, err := http.NewRequest(http.MethodPost, g.URL+"/graphql", io.MultiReader(bytes.NewReader(small)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+g.AdminToken)
		var me struct{ Me account }
		mustDo(t, req).MustOK(t, &me)
		if me.Me.Username != "root" {
			t.Fatalf("me = %+v", me.Me)
		}
	})
}

func TestGraphiQL(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	resp, body := g.Get(t, "/graphiql")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /graphiql = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(strings.ToLower(body), "graphiql") || !strings.Contains(body, "/graphql") {
		t.Fatalf("/graphiql is not a GraphiQL page for /graphql:\n%.300s", body)
	}
}

func TestJWKSVerifiesLoginToken(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	resp, body := g.Get(t, "/.well-known/jwks.json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET jwks = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS = %s, want one key", body)
	}
	k := set.Keys[0]
	if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["kid"] == "" || k["d"] != "" {
		t.Fatalf("JWKS key = %v, want a public Ed25519 OKP key", k)
	}
	x, err := base64.RawURLEncoding.DecodeString(k["x"])
	if err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("x = %q is not an Ed25519 public key (%v)", k["x"], err)
	}

	var li struct{ Login authPayload }
	g.Query(t, "", loginMutation, map[string]any{"u": "root", "p": "root-beak-print"}).MustOK(t, &li)
	parts := strings.Split(li.Login.Token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWS compact serialization", li.Login.Token)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	// Verified independently of any JWT library: Ed25519 over "header.payload".
	if !ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the JWKS key does not verify the login token's signature")
	}
	var header, claims map[string]any
	for i, v := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "EdDSA" || header["kid"] != k["kid"] {
		t.Fatalf("header = %v, want alg EdDSA and kid %s", header, k["kid"])
	}
	if claims["sub"] != li.Login.Account.ID || claims["role"] != "ADMIN" || claims["exp"] != float64(start.Unix()+3600) {
		t.Fatalf("claims = %v", claims)
	}
	// A flipped bit no longer verifies.
	sig[0] ^= 1
	if ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("a tampered signature verifies")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	resp, body := g.Get(t, "/healthz")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, body)
	}
	resp, body = g.Get(t, "/readyz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"auth-db":"ok"}` {
		t.Fatalf("/readyz = %d %s", resp.StatusCode, body)
	}

	failing := MustGateway(t, WithReady(func(db *storage.DB) map[string]func(context.Context) error {
		return map[string]func(context.Context) error{
			"auth-db": db.SQL.PingContext,
			"broker":  func(context.Context) error { return errors.New("dial tcp 10.0.0.1:5672: connection refused") },
		}
	}))
	resp, body = failing.Get(t, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a failing check = %d, want 503", resp.StatusCode)
	}
	var status map[string]string
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatal(err)
	}
	if status["broker"] != "unavailable" || status["auth-db"] != "ok" || strings.Contains(body, "10.0.0.1") {
		t.Fatalf("/readyz body = %s", body)
	}
	// A closed database makes the default check fail too.
	closed := MustGateway(t)
	closed.DB.Close()
	if resp, _ := closed.Get(t, "/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a closed database = %d, want 503", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	g.Query(t, g.AdminToken, `{ me { id } }`, nil).MustOK(t, nil)
	g.Get(t, "/healthz")
	resp, body := g.Get(t, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`ates_http_requests_total{code="200",path="/graphql"}`,
		`ates_http_requests_total{code="200",path="/healthz"}`,
		`ates_http_request_duration_seconds_bucket{path="/graphql"`,
	} {
		if !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	// Unknown paths share one label, so a scanner cannot blow up the series count.
	g.Get(t, "/wp-admin/setup.php")
	if _, body := g.Get(t, "/metrics"); strings.Contains(body, "wp-admin") || !strings.Contains(body, `path="other"`) {
		t.Fatal("unknown paths are not folded into path=\"other\"")
	}
}
