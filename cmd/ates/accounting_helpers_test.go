package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/testenv"
)

// Helpers of the accounting and live-balance tests: typed GraphQL calls against a running
// `ates` process, popugs of every role, and the production environment (PostgreSQL +
// RabbitMQ) with per-test databases, exchange and queues.

// mustDo runs a query or mutation that must succeed and decodes its data into out (if not nil).
func mustDo(tb testing.TB, base, token, query string, vars map[string]any, out any) {
	tb.Helper()
	r := mustGraphQL(tb, base, token, query, vars)
	if len(r.Errors) > 0 {
		tb.Fatalf("%s\nerrors: %+v", oneLine(query), r.Errors)
	}
	if out == nil {
		return
	}
	raw, err := json.Marshal(r.Data)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatalf("%s\ndecoding %s: %v", oneLine(query), raw, err)
	}
}

// mustFail runs an operation that must fail with every error coded code and no data besides
// nulls (R-API-4).
func mustFail(tb testing.TB, base, token, code, query string, vars map[string]any) {
	tb.Helper()
	r := mustGraphQL(tb, base, token, query, vars)
	if len(r.Errors) == 0 {
		raw, _ := json.Marshal(r.Data)
		tb.Fatalf("%s\nwant a %s error, got data %s", oneLine(query), code, raw)
	}
	for _, e := range r.Errors {
		if got, _ := e.Extensions["code"].(string); got != code || e.Message == "" {
			tb.Fatalf("%s\nwant code %s, got %+v", oneLine(query), code, r.Errors)
		}
	}
	for k, v := range r.Data {
		if s := strings.TrimSpace(string(v)); s != "null" {
			tb.Fatalf("%s\nan error response carries data %s = %s", oneLine(query), k, s)
		}
	}
}

func oneLine(q string) string { return strings.Join(strings.Fields(q), " ") }

// moneyFormat is the contract's Money: a decimal string with exactly two fraction digits.
var moneyFormat = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2}$`)

// cents reads a Money value.
func cents(tb testing.TB, s string) money.Cents {
	tb.Helper()
	if !moneyFormat.MatchString(s) || s == "-0.00" {
		tb.Fatalf("money %q is not formatted like \"-12.00\"", s)
	}
	c, err := money.Parse(s)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// popug is an account a test acts as.
type popug struct {
	Name, ID, Token, Role string
}

// mustSignUp signs a popug up (a WORKER) and returns it logged in.
func mustSignUp(tb testing.TB, base, name string) *popug {
	tb.Helper()
	var r struct {
		SignUp struct {
			Token   string
			Account struct{ ID, Role string }
		}
	}
	mustDo(tb, base, "", `mutation($u:String!,$p:String!,$f:String!,$e:String!){
		signUp(input:{username:$u,password:$p,fullName:$f,email:$e}){token account{id role}}}`,
		map[string]any{"u": name, "p": name + "-beak-print", "f": "Popug " + name, "e": name + "@uberpopug.com"}, &r)
	if r.SignUp.Account.Role != "WORKER" {
		tb.Fatalf("signed-up %s has role %s, want WORKER", name, r.SignUp.Account.Role)
	}
	return &popug{Name: name, ID: r.SignUp.Account.ID, Token: r.SignUp.Token, Role: "WORKER"}
}

// mustCreatePopug creates an account of the role as the admin and logs it in.
func mustCreatePopug(tb testing.TB, base, adminToken, name, role string) *popug {
	tb.Helper()
	var r struct{ CreateAccount struct{ ID, Role string } }
	mustDo(tb, base, adminToken, `mutation($u:String!,$p:String!,$f:String!,$e:String!,$r:Role!){
		createAccount(input:{username:$u,password:$p,fullName:$f,email:$e,role:$r}){id role}}`,
		map[string]any{"u": name, "p": name + "-beak-print", "f": "Popug " + name, "e": name + "@uberpopug.com", "r": role}, &r)
	if r.CreateAccount.Role != role {
		tb.Fatalf("created %s with role %s, want %s", name, r.CreateAccount.Role, role)
	}
	token, id := mustLogin(tb, base, name, name+"-beak-print")
	if id != r.CreateAccount.ID {
		tb.Fatalf("%s logged in as %s, created as %s", name, id, r.CreateAccount.ID)
	}
	return &popug{Name: name, ID: id, Token: token, Role: role}
}

// createdTask is what createTask answered.
type createdTask struct {
	ID       string
	Title    string
	JiraID   string
	Assignee struct{ ID string }
}

// mustCreateTask creates a task as the token's bearer, retrying while the task tracker's
// account replica has not caught up with the sign-ups (no assignable popug yet).
func mustCreateTask(tb testing.TB, base, token string, n int) createdTask {
	tb.Helper()
	vars := map[string]any{"t": fmt.Sprintf("Feed the parrots, round %d", n), "j": fmt.Sprintf("UBERPOP-%d", n), "d": "Seeds, then water."}
	var out createdTask
	waitWithin(tb, 20*time.Second, "createTask", func() (bool, string) {
		r := mustGraphQL(tb, base, token, `mutation($t:String!,$j:String,$d:String!){
			createTask(input:{title:$t,jiraId:$j,description:$d}){id title jiraId status assignee{id}}}`, vars)
		if len(r.Errors) > 0 {
			return false, fmt.Sprintf("%+v", r.Errors)
		}
		if err := json.Unmarshal(r.Data["createTask"], &out); err != nil {
			tb.Fatal(err)
		}
		return true, ""
	})
	return out
}

// production is a fresh production environment: a database name prefix on the test
// PostgreSQL server and an exchange (with its own durable queues) on the test RabbitMQ.
type production struct {
	Name    string
	Environ []string
}

// mustProduction returns the ATES_* environment of a fresh production shape, removed (its
// databases, exchange and durable queues) when the test ends; the admin is boss.
func mustProduction(tb testing.TB, extra ...string) production {
	tb.Helper()
	pgAdmin := testenv.RequirePostgres(tb)
	amqpURL := testenv.RequireRabbitMQ(tb)
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "ates_run_" + hex.EncodeToString(b[:])
	u, err := url.Parse(pgAdmin)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	tb.Cleanup(func() {
		dropDatabases(tb, pgAdmin, name)
		deleteExchange(tb, amqpURL, name)
		deleteQueues(tb, amqpURL, name)
	})
	return production{Name: name, Environ: append([]string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + tb.TempDir(),
		"ATES_DATABASE_URL=" + u.String(), "ATES_AMQP_URL=" + amqpURL, "ATES_AMQP_EXCHANGE=" + name,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}, extra...)}
}

// logProblemsOnFailure logs the process's warnings and errors when the test fails.
func logProblemsOnFailure(tb testing.TB, name string, p *process) {
	tb.Cleanup(func() {
		if !tb.Failed() {
			return
		}
		for _, l := range strings.Split(p.stderr.String(), "\n") {
			if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
				tb.Logf("%s: %s", name, l)
			}
		}
	})
}

// deleteQueues removes the durable queues of the stack whose exchange is exchange.
func deleteQueues(tb testing.TB, amqpURL, exchange string) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		tb.Log(err)
		return
	}
	defer conn.Close()
	for _, q := range topology() {
		ch, err := conn.Channel()
		if err != nil {
			tb.Log(err)
			return
		}
		if _, err := ch.QueueDelete(queuePrefix(exchange)+q.Name, false, false, false); err != nil {
			tb.Logf("deleting queue %s: %v", queuePrefix(exchange)+q.Name, err)
		}
		_ = ch.Close()
	}
}
