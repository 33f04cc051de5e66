package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/testenv"
)

// syncBuffer is an io.Writer safe for the process's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var upLine = regexp.MustCompile(`aTES is up: GraphQL (http://\S+)/graphql`)

// process is one `ates` command running inside the test.
type process struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error
}

// MustStart runs `ates args…` with the environment and, for commands that serve HTTP, waits
// for the gateway's URL.
func MustStart(tb testing.TB, environ []string, args ...string) (*process, string) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, args, environ, &p.stdout, &p.stderr) }()
	tb.Cleanup(func() { p.Stop(tb) })
	if len(args) > 0 && args[0] == "worker" {
		return p, ""
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := upLine.FindStringSubmatch(p.stdout.String()); m != nil {
			return p, m[1]
		}
		select {
		case err := <-p.done:
			tb.Fatalf("ates %v exited early: %v\nstderr:\n%s", args, err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	tb.Fatalf("ates %v did not come up\nstdout:\n%s\nstderr:\n%s", args, p.stdout.String(), p.stderr.String())
	return nil, ""
}

// Stop cancels the process (as a signal would) and checks that it stopped cleanly.
func (p *process) Stop(tb testing.TB) {
	tb.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			tb.Errorf("ates stopped with %v\nstderr:\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		tb.Errorf("ates did not stop within 30s")
	}
}

type gqlResponse struct {
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// client sends the tests' GraphQL requests. Unlike http.DefaultClient, which keeps at most two
// idle connections per host, it keeps one for each of up to 512 concurrent requests, as a web
// app's users each keep theirs: a burst of concurrent requests would otherwise open a new TCP
// connection for most of them, a cost real clients do not put on the gateway.
var client = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 512
	return t
}()}

func mustGraphQL(tb testing.TB, base, token, query string, vars map[string]any) gqlResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var out gqlResponse
	raw, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("response %d is not JSON: %s", res.StatusCode, raw)
	}
	return out
}

func mustLogin(tb testing.TB, base, username, password string) (token, id string) {
	tb.Helper()
	r := mustGraphQL(tb, base, "", `mutation($u:String!,$p:String!){login(username:$u,password:$p){token account{id}}}`,
		map[string]any{"u": username, "p": password})
	if len(r.Errors) > 0 {
		tb.Fatalf("login %s: %v", username, r.Errors)
	}
	var l struct {
		Token   string
		Account struct{ ID string }
	}
	if err := json.Unmarshal(r.Data["login"], &l); err != nil || l.Token == "" {
		tb.Fatalf("login %s: %s", username, r.Data["login"])
	}
	return l.Token, l.Account.ID
}

// TestRunEmbeddedDefault starts aTES as `make run` does (R-OPS-1): it prints the URL and the
// generated admin password, serves GraphiQL, and the admin can log in.
func TestRunEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	p, base := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir})
	m := regexp.MustCompile(`Username: (\S+)  Password: (\S+)`).FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no bootstrap credentials printed:\n%s", p.stdout.String())
	}
	mustLogin(t, base, m[1], m[2])
	checkTaskReachesLedger(t, base)
	res, err := http.Get(base + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(page), "GraphiQL") {
		t.Errorf("/graphiql = %d %.100s", res.StatusCode, page)
	}
	// The web app at / and its client routes (R-WEB-1), from the assets built into the binary.
	for _, p := range []string{"/", "/tasks"} {
		res, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(page), `<div id="root">`) {
			t.Errorf("%s = %d %.100s", p, res.StatusCode, page)
		}
	}
	p.Stop(t)

	// A second start on the same data keeps the admin and prints no new password.
	p2, base2 := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir})
	if strings.Contains(p2.stdout.String(), "Password:") {
		t.Errorf("second start printed a password again:\n%s", p2.stdout.String())
	}
	mustLogin(t, base2, m[1], m[2])
}

// TestRunProductionDeactivationReachesGateway runs the production shape — PostgreSQL database
// per context, RabbitMQ, a gateway and a separate worker — and checks that a deactivation
// reaches the gateway through the outbox, the relay and RabbitMQ within seconds (R-AUTH-5).
func TestRunProductionDeactivationReachesGateway(t *testing.T) {
	pgAdmin := testenv.RequirePostgres(t)
	amqpURL := testenv.RequireRabbitMQ(t)
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "ates_run_" + hex.EncodeToString(b[:])
	u, _ := url.Parse(pgAdmin)
	u.Path = "/" + name
	t.Cleanup(func() {
		dropDatabases(t, pgAdmin, name)
		deleteExchange(t, amqpURL, name)
		deleteQueues(t, amqpURL, name)
	})

	environ := []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(),
		"ATES_DATABASE_URL=" + u.String(), "ATES_AMQP_URL=" + amqpURL, "ATES_AMQP_EXCHANGE=" + name,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}
	_, base := MustStart(t, environ, "gateway")
	MustStart(t, environ, "worker")

	admin, _ := mustLogin(t, base, "boss", "boss-beak-print")
	checkTaskReachesLedger(t, base)
	r := mustGraphQL(t, base, "", `mutation{signUp(input:{username:"kesha",password:"kesha-beak",fullName:"Kesha",email:"kesha@uberpopug.com"}){token account{id role}}}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("signUp: %v", r.Errors)
	}
	worker, workerID := mustLogin(t, base, "kesha", "kesha-beak")
	if r := mustGraphQL(t, base, worker, `{me{username}}`, nil); len(r.Errors) > 0 {
		t.Fatalf("me before deactivation: %v", r.Errors)
	}
	if r := mustGraphQL(t, base, admin, `mutation($id:ID!){deactivateAccount(accountId:$id){active}}`, map[string]any{"id": workerID}); len(r.Errors) > 0 {
		t.Fatalf("deactivate: %v", r.Errors)
	}
	waitWithin(t, 10*time.Second, "the deactivated account's token to be refused", func() (bool, string) {
		r := mustGraphQL(t, base, worker, `{me{username}}`, nil)
		return len(r.Errors) > 0 && r.Errors[0].Extensions["code"] == "UNAUTHENTICATED", fmt.Sprintf("%v", r)
	})
	for _, c := range Contexts {
		if !databaseExists(t, pgAdmin, name+"_"+c) {
			t.Errorf("database %s_%s was not created", name, c)
		}
	}
}

func databaseExists(tb testing.TB, admin, name string) bool {
	tb.Helper()
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var ok bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok); err != nil {
		tb.Fatal(err)
	}
	return ok
}

func dropDatabases(tb testing.TB, admin, prefix string) {
	db, err := sql.Open("postgres", admin)
	if err != nil {
		tb.Log(err)
		return
	}
	defer db.Close()
	for _, c := range Contexts {
		if _, err := db.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pq.QuoteIdentifier(prefix+"_"+c))); err != nil {
			tb.Logf("dropping %s_%s: %v", prefix, c, err)
		}
	}
}

func deleteExchange(tb testing.TB, amqpURL, name string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		tb.Log(err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		tb.Log(err)
		return
	}
	if err := ch.ExchangeDelete(name, false, false); err != nil {
		tb.Logf("deleting exchange %s: %v", name, err)
	}
}

// checkTaskReachesLedger signs a popug up, creates a task (it can only go to that popug) and
// waits for its fee in the popug's ledger: the tasks and accounting contexts and the event
// flow between them are wired.
func checkTaskReachesLedger(t *testing.T, base string) {
	t.Helper()
	r := mustGraphQL(t, base, "", `mutation{signUp(input:{username:"rio",password:"rio-beak-print",fullName:"Rio",email:"rio@uberpopug.com"}){token}}`, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("signUp: %v", r.Errors)
	}
	token, _ := mustLogin(t, base, "rio", "rio-beak-print")
	// The account replica may lag the sign-up a moment.
	waitWithin(t, 10*time.Second, "createTask", func() (bool, string) {
		r = mustGraphQL(t, base, token, `mutation{createTask(input:{title:"Fix the beak scanner",jiraId:"UBERPOP-42",description:"It beeps."}){assignee{username}}}`, nil)
		return len(r.Errors) == 0, fmt.Sprintf("%v", r.Errors)
	})
	if !strings.Contains(string(r.Data["createTask"]), `"rio"`) {
		t.Fatalf("createTask = %s, want assignee rio", r.Data["createTask"])
	}
	waitWithin(t, 10*time.Second, "the fee entry", func() (bool, string) {
		r = mustGraphQL(t, base, token, `{myBillingAccount{balance entries{edges{node{type description}}}}}`, nil)
		if len(r.Errors) > 0 {
			t.Fatalf("myBillingAccount: %v", r.Errors)
		}
		return strings.Contains(string(r.Data["myBillingAccount"]), "Fee for task UBERPOP-42 Fix the beak scanner"), string(r.Data["myBillingAccount"])
	})
}

// TestRunMetricsOnTheirOwnListener: R-SEC-8 — with ATES_METRICS_ADDR, /metrics answers there
// and not on the public address.
func TestRunMetricsOnTheirOwnListener(t *testing.T) {
	p, base := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_METRICS_ADDR=127.0.0.1:0"})
	m := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no metrics listener logged:\n%s", p.stderr.String())
	}
	mustGraphQL(t, base, "", `{__typename}`, nil) // a request for the counter to count
	res, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "ates_http_requests_total") {
		t.Fatalf("metrics listener: %d %.200s", res.StatusCode, body)
	}
	if res, err = http.Get(base + "/metrics"); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == http.StatusOK {
		t.Fatal("/metrics is also served on the public address")
	}
	// Go's profiles only with ATES_PPROF, and only on the metrics listener.
	for _, u := range []string{"http://" + m[1] + "/debug/pprof/heap", base + "/debug/pprof/heap"} {
		if res, err = http.Get(u); err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if isProfile(res) {
			t.Errorf("%s is served without ATES_PPROF", u)
		}
	}
}

// TestRunPprofOnTheMetricsListener: with ATES_PPROF, Go's profiles are served on the metrics
// listener (for cmd/atesbench) and still not on the public address.
func TestRunPprofOnTheMetricsListener(t *testing.T) {
	p, base := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(), "ATES_METRICS_ADDR=127.0.0.1:0", "ATES_PPROF=1"})
	m := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no metrics listener logged:\n%s", p.stderr.String())
	}
	for u, want := range map[string]bool{"http://" + m[1] + "/debug/pprof/heap": true, base + "/debug/pprof/heap": false} {
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := isProfile(res); got != want {
			t.Errorf("GET %s = %d %s, want a profile: %v", u, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
	}
}

// isProfile reports whether the response is a pprof profile (the web app answers other paths
// with its page).
func isProfile(res *http.Response) bool {
	return res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") == "application/octet-stream"
}

// TestRunBusyPortCreatesNothing: a start on a busy port fails before any database or admin is
// created, so the one-time admin password is not printed into a start that cannot serve.
func TestRunBusyPortCreatesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), nil, []string{"ATES_HTTP_ADDR=" + busy.Addr().String(), "ATES_DATA_DIR=" + dir}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "ATES_HTTP_ADDR") {
		t.Fatalf("run on a busy port: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 || strings.Contains(stdout.String(), "Password") {
		t.Fatalf("a failed start left %v and printed %q", entries, stdout.String())
	}
}

// TestRunOneProcessPerDataDir: a second aTES on the same ATES_DATA_DIR is refused with a clear
// message; once the first stopped, it starts. A password set for an existing admin is ignored,
// and the log says so.
func TestRunOneProcessPerDataDir(t *testing.T) {
	dir := t.TempDir()
	first, _ := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir})
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), nil, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "another aTES process is running on the data directory") {
		t.Fatalf("second process on one data dir: %v", err)
	}
	first.Stop(t)
	second, _ := MustStart(t, []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir, "ATES_ADMIN_PASSWORD=a-new-beak-print"})
	if !strings.Contains(second.stderr.String(), "ATES_ADMIN_PASSWORD is set but ignored") {
		t.Fatalf("no word of the ignored password:\n%s", second.stderr.String())
	}
}

// TestRunAdminResetPassword: a lost admin password is replaced from the command line; the new
// one logs in, the old one no longer does, and the running gateway's sessions of the account
// end (R-SESS-3).
func TestRunAdminResetPassword(t *testing.T) {
	dir := t.TempDir()
	env := []string{"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir, "ATES_ADMIN_PASSWORD=the-first-beak"}
	_, base := MustStart(t, env)
	mustLogin(t, base, "admin", "the-first-beak")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"admin", "reset-password", "admin"}, env, &stdout, &stderr); err != nil {
		t.Fatalf("reset-password: %v\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`New password of admin: (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("no password printed:\n%s", stdout.String())
	}
	mustLogin(t, base, "admin", m[1])
	if r := mustGraphQL(t, base, "", `mutation { login(username: "admin", password: "the-first-beak") { token } }`, nil); len(r.Errors) == 0 {
		t.Fatal("the old password still logs in")
	}
	if err := run(context.Background(), []string{"admin", "reset-password", "nobody"}, env, &stdout, &stderr); err == nil {
		t.Fatal("reset-password of an unknown account succeeded")
	}
}
