package graph_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/identity"
)

const taskFields = `id title jiraId description status createdAt completedAt assignee { ` + accountFields + ` }`

const (
	createTaskMutation   = `mutation($input: CreateTaskInput!) { createTask(input: $input) { ` + taskFields + ` } }`
	shuffleTasksMutation = `mutation { shuffleTasks { reassigned } }`
	completeTaskMutation = `mutation($id: ID!) { completeTask(id: $id) { ` + taskFields + ` } }`
	taskQuery            = `query($id: ID!) { task(id: $id) { ` + taskFields + ` } }`
	tasksQuery           = `query($first: Int, $after: String, $status: TaskStatus, $assigneeId: ID) {
		tasks(first: $first, after: $after, status: $status, assigneeId: $assigneeId) {
			totalCount
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
			edges { cursor node { ` + taskFields + ` } }
		}
	}`
	myTasksQuery = `query($first: Int, $after: String, $status: TaskStatus) {
		myTasks(first: $first, after: $after, status: $status) {
			totalCount
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
			edges { cursor node { ` + taskFields + ` } }
		}
	}`
)

type taskNode struct {
	ID          string  `json:"id"`
	Title       string  `json:"title"`
	JiraID      *string `json:"jiraId"`
	Description string  `json:"description"`
	Status      string  `json:"status"`
	CreatedAt   string  `json:"createdAt"`
	CompletedAt *string `json:"completedAt"`
	Assignee    account `json:"assignee"`
}

// flatTask is a taskNode with its nullable fields flattened, so tasks compare with ==.
type flatTask struct {
	ID, Title, JiraID, Description, Status, CreatedAt, CompletedAt string
	HasJiraID, HasCompletedAt                                      bool
	Assignee                                                       account
}

func (n taskNode) flat() flatTask {
	f := flatTask{ID: n.ID, Title: n.Title, Description: n.Description, Status: n.Status, CreatedAt: n.CreatedAt, Assignee: n.Assignee}
	if n.JiraID != nil {
		f.JiraID, f.HasJiraID = *n.JiraID, true
	}
	if n.CompletedAt != nil {
		f.CompletedAt, f.HasCompletedAt = *n.CompletedAt, true
	}
	return f
}

type taskConnection struct {
	TotalCount int `json:"totalCount"`
	PageInfo   struct {
		HasNextPage     bool    `json:"hasNextPage"`
		HasPreviousPage bool    `json:"hasPreviousPage"`
		StartCursor     *string `json:"startCursor"`
		EndCursor       *string `json:"endCursor"`
	} `json:"pageInfo"`
	Edges []struct {
		Cursor string   `json:"cursor"`
		Node   taskNode `json:"node"`
	} `json:"edges"`
}

func taskInput(title string, jiraID *string, description string) map[string]any {
	in := map[string]any{"title": title, "description": description}
	if jiraID != nil {
		in["jiraId"] = *jiraID
	}
	return map[string]any{"input": in}
}

// MustTask creates a task through the API as the token's bearer.
func (g *Gateway) MustTask(tb testing.TB, token, title string) taskNode {
	tb.Helper()
	var out struct{ CreateTask taskNode }
	g.Query(tb, token, createTaskMutation, taskInput(title, nil, "Description of "+title)).MustOK(tb, &out)
	return out.CreateTask
}

// MustPopugs creates accounts of the roles, puts them in the task tracker's replica and returns
// them by username.
func (g *Gateway) MustPopugs(tb testing.TB, roles map[string]identity.Role) map[string]User {
	tb.Helper()
	out := map[string]User{}
	for name, r := range roles {
		out[name] = g.MustUser(tb, name, r)
	}
	g.SyncReplica(tb)
	return out
}

// mustAccount returns the account as auth serves it.
func (g *Gateway) mustAccount(tb testing.TB, id string) account {
	tb.Helper()
	a, err := g.Auth.Get(context.Background(), uuid.MustParse(id))
	if err != nil {
		tb.Fatal(err)
	}
	return account{
		ID: a.ID.String(), Username: a.Username, FullName: a.FullName, Email: a.Email, Role: string(a.Role),
		Active: a.Active, CreatedAt: a.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

func jira(s string) *string { return &s }

// TestTaskFlow walks the task tracker's story through the real handler, on SQLite and
// PostgreSQL: create (R-TASK-2), read (R-TASK-1, R-TASK-6), complete (R-TASK-7), shuffle
// (R-TASK-4), with the assignee resolved from auth.
func TestTaskFlow(t *testing.T) {
	t.Parallel()
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t, OnDialect(d))
			u := g.MustPopugs(t, map[string]identity.Role{"kesha": identity.Worker, "boss": identity.Manager})
			kesha, boss := u["kesha"], u["boss"]
			g.Clock.Advance(time.Minute)

			// The manager creates a task; kesha is the only assignable popug (R-TASK-3).
			var cr struct{ CreateTask taskNode }
			g.Query(t, boss.Token, createTaskMutation, taskInput("Fix the beak scanner", jira("UBERPOP-42"), "It scans claws.")).MustOK(t, &cr)
			tk := cr.CreateTask
			if _, err := uuid.Parse(tk.ID); err != nil || tk.Title != "Fix the beak scanner" || tk.JiraID == nil || *tk.JiraID != "UBERPOP-42" ||
				tk.Description != "It scans claws." || tk.Status != "OPEN" || tk.CreatedAt != "2026-03-01T09:01:00Z" || tk.CompletedAt != nil {
				t.Fatalf("created %+v", tk)
			}
			if tk.Assignee != g.mustAccount(t, kesha.ID) || tk.Assignee.Username != "kesha" || tk.Assignee.Role != "WORKER" {
				t.Fatalf("assignee = %+v, want kesha as auth has her", tk.Assignee)
			}

			// Anyone reads it, by id and in the lists.
			var one struct{ Task *taskNode }
			g.Query(t, g.AdminToken, taskQuery, map[string]any{"id": tk.ID}).MustOK(t, &one)
			if one.Task == nil || one.Task.flat() != tk.flat() {
				t.Fatalf("task(id) = %+v, want %+v", one.Task, tk)
			}
			var mine struct{ MyTasks taskConnection }
			g.Query(t, kesha.Token, myTasksQuery, nil).MustOK(t, &mine)
			if mine.MyTasks.TotalCount != 1 || len(mine.MyTasks.Edges) != 1 || mine.MyTasks.Edges[0].Node.flat() != tk.flat() {
				t.Fatalf("kesha's tasks = %+v", mine.MyTasks)
			}
			g.Query(t, boss.Token, myTasksQuery, nil).MustOK(t, &mine)
			if mine.MyTasks.TotalCount != 0 || len(mine.MyTasks.Edges) != 0 {
				t.Fatalf("the manager's own tasks = %+v", mine.MyTasks)
			}

			// The shuffle draws kesha again: still an assignment, and still hers (R-TASK-4).
			var sh struct {
				ShuffleTasks struct{ Reassigned int }
			}
			g.Query(t, boss.Token, shuffleTasksMutation, nil).MustOK(t, &sh)
			if sh.ShuffleTasks.Reassigned != 1 {
				t.Fatalf("shuffle reassigned %d, want 1", sh.ShuffleTasks.Reassigned)
			}

			// Only kesha completes it (R-TASK-7).
			g.Query(t, boss.Token, completeTaskMutation, map[string]any{"id": tk.ID}).MustError(t, "FORBIDDEN")
			g.Query(t, g.AdminToken, completeTaskMutation, map[string]any{"id": tk.ID}).MustError(t, "FORBIDDEN")
			g.Clock.Advance(30 * time.Minute) // tokens live an hour
			var co struct{ CompleteTask taskNode }
			g.Query(t, kesha.Token, completeTaskMutation, map[string]any{"id": tk.ID}).MustOK(t, &co)
			done := co.CompleteTask
			if done.ID != tk.ID || done.Status != "DONE" || done.CompletedAt == nil || *done.CompletedAt != "2026-03-01T09:31:00Z" ||
				done.Assignee != tk.Assignee || done.Title != tk.Title || done.CreatedAt != tk.CreatedAt {
				t.Fatalf("completed %+v", done)
			}
			g.Query(t, kesha.Token, completeTaskMutation, map[string]any{"id": tk.ID}).MustError(t, "CONFLICT")
			g.Query(t, kesha.Token, completeTaskMutation, map[string]any{"id": uuid.NewString()}).MustError(t, "NOT_FOUND")
			g.Query(t, kesha.Token, completeTaskMutation, map[string]any{"id": "not-an-id"}).MustFieldError(t, "id")
			g.Query(t, g.AdminToken, taskQuery, map[string]any{"id": tk.ID}).MustOK(t, &one)
			if one.Task == nil || one.Task.flat() != done.flat() {
				t.Fatalf("task(id) after completion = %+v, want %+v", one.Task, done)
			}
			// DONE tasks are never reshuffled (R-TASK-7).
			g.Query(t, g.AdminToken, shuffleTasksMutation, nil).MustOK(t, &sh)
			if sh.ShuffleTasks.Reassigned != 0 {
				t.Fatalf("shuffle reassigned %d DONE tasks", sh.ShuffleTasks.Reassigned)
			}
		})
	}
}

// taskOp is one task operation of the contract.
type taskOp struct {
	name  string
	query string
	vars  func(c caller) map[string]any
}

// caller is who runs an operation in TestTaskAccessByRole, with the tasks they may touch.
type caller struct {
	token  string
	own    string // an open task assigned to the caller, "" when they can have none
	others string // an open task assigned to someone else
}

var taskOps = []taskOp{
	{"tasks", tasksQuery, func(caller) map[string]any { return map[string]any{"first": 5} }},
	{"myTasks", myTasksQuery, func(caller) map[string]any { return nil }},
	{"task", taskQuery, func(c caller) map[string]any { return map[string]any{"id": c.others} }},
	{"createTask", createTaskMutation, func(caller) map[string]any { return taskInput("New task", nil, "d") }},
	{"shuffleTasks", shuffleTasksMutation, func(caller) map[string]any { return nil }},
	{"completeTask (own)", completeTaskMutation, func(c caller) map[string]any { return map[string]any{"id": c.own} }},
	{"completeTask (someone else's)", completeTaskMutation, func(c caller) map[string]any { return map[string]any{"id": c.others} }},
}

// TestTaskAccessByRole runs every task operation as every kind of caller (R-TASK-1, R-TASK-2,
// R-TASK-4, R-TASK-6, R-TASK-7, R-API-4).
func TestTaskAccessByRole(t *testing.T) {
	t.Parallel()
	// want[caller][operation] is the error code, "" when allowed.
	worker := map[string]string{"tasks": "", "myTasks": "", "task": "", "createTask": "", "shuffleTasks": "FORBIDDEN",
		"completeTask (own)": "", "completeTask (someone else's)": "FORBIDDEN"}
	lead := map[string]string{"tasks": "", "myTasks": "", "task": "", "createTask": "", "shuffleTasks": "",
		"completeTask (someone else's)": "FORBIDDEN"}
	anon := map[string]string{}
	for _, o := range taskOps {
		anon[o.name] = "UNAUTHENTICATED"
	}
	want := map[string]map[string]string{"anonymous": anon, "WORKER": worker, "ACCOUNTANT": worker, "MANAGER": lead, "ADMIN": lead}

	g := MustGateway(t)
	u := g.MustPopugs(t, map[string]identity.Role{"worker": identity.Worker, "accountant": identity.Accountant, "manager": identity.Manager})
	// Tasks until both assignable popugs have several open ones (draws are seeded).
	open := map[string][]string{}
	for i := 0; len(open[u["worker"].ID]) < 4 || len(open[u["accountant"].ID]) < 4; i++ {
		if i == 100 {
			t.Fatalf("100 tasks did not give both assignable popugs four: %v", open)
		}
		tk := g.MustTask(t, g.AdminToken, fmt.Sprintf("task %d", i))
		open[tk.Assignee.ID] = append(open[tk.Assignee.ID], tk.ID)
	}
	take := func(id string) string {
		ts := open[id]
		open[id] = ts[1:]
		return ts[0]
	}
	// In this order: the shuffles of the manager and the admin come after the completions of the
	// tasks the worker and the accountant own.
	callers := []struct {
		name string
		mk   func() caller
	}{
		{"anonymous", func() caller { return caller{own: take(u["worker"].ID), others: take(u["accountant"].ID)} }},
		{"WORKER", func() caller {
			return caller{token: u["worker"].Token, own: take(u["worker"].ID), others: take(u["accountant"].ID)}
		}},
		{"ACCOUNTANT", func() caller {
			return caller{token: u["accountant"].Token, own: take(u["accountant"].ID), others: take(u["worker"].ID)}
		}},
		{"MANAGER", func() caller { return caller{token: u["manager"].Token, others: take(u["worker"].ID)} }},
		{"ADMIN", func() caller { return caller{token: g.AdminToken, others: take(u["accountant"].ID)} }},
	}
	for _, cl := range callers {
		name := cl.name
		c := cl.mk()
		for _, o := range taskOps {
			code, applies := want[name][o.name]
			if !applies {
				continue // a manager or an admin is never an assignee
			}
			r := g.Query(t, c.token, o.query, o.vars(c))
			if code == "" {
				if len(r.Errors) > 0 {
					t.Errorf("%s %s: want success, got %s", name, o.name, r.Body)
				}
				continue
			}
			if len(r.Errors) == 0 {
				t.Errorf("%s %s: want %s, got %s", name, o.name, code, r.Body)
				continue
			}
			r.MustError(t, code)
		}
	}
	// Refused completions completed nothing: exactly the worker's and the accountant's own.
	var done struct{ Tasks taskConnection }
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"status": "DONE"}).MustOK(t, &done)
	if done.Tasks.TotalCount != 2 {
		t.Fatalf("%d tasks are DONE, want 2", done.Tasks.TotalCount)
	}
}

// TestCreateTaskBadInput: R-TASK-2, R-API-4 — invalid input is BAD_USER_INPUT naming the field,
// and nothing is stored.
func TestCreateTaskBadInput(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustPopugs(t, map[string]identity.Role{"worker": identity.Worker})["worker"]
	tests := []struct {
		name    string
		title   string
		jiraID  *string
		desc    string
		field   string
		message string
	}{
		{"title empty", "", nil, "d", "title", "1 to 200"},
		{"title blank", "   ", nil, "d", "title", "1 to 200"},
		{"title 201 chars", strings.Repeat("t", 201), nil, "d", "title", "1 to 200"},
		{"title with [", "Fix [the] scanner", nil, "d", "title", "jiraId"},
		{"title with a legacy Jira id", "[UBERPOP-42] Fix", nil, "d", "title", "jiraId"},
		{"jiraId lower-case", "Fix", jira("uberpop-42"), "d", "jiraId", "UBERPOP-42"},
		{"jiraId without number", "Fix", jira("UBERPOP-"), "d", "jiraId", "UBERPOP-42"},
		{"jiraId with spaces", "Fix", jira("UBERPOP 42"), "d", "jiraId", "UBERPOP-42"},
		{"description empty", "Fix", nil, "", "description", "1 to 10000"},
		{"description 10001 chars", "Fix", nil, strings.Repeat("d", 10001), "description", "1 to 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := g.Query(t, w.Token, createTaskMutation, taskInput(tt.title, tt.jiraID, tt.desc)).MustFieldError(t, tt.field)
			if !strings.Contains(e.Message, tt.message) {
				t.Fatalf("message %q does not say %q", e.Message, tt.message)
			}
		})
	}
	t.Run("missing description", func(t *testing.T) {
		t.Parallel()
		g.Query(t, w.Token, `mutation { createTask(input: {title: "Fix"}) { id } }`, nil).MustError(t, "BAD_USER_INPUT")
	})
	t.Run("limits hold", func(t *testing.T) {
		t.Parallel()
		var ok struct{ CreateTask taskNode }
		g.Query(t, w.Token, createTaskMutation, taskInput(strings.Repeat("ü", 200), jira("A1-1"), strings.Repeat("ж", 10000))).MustOK(t, &ok)
		if ok.CreateTask.Title != strings.Repeat("ü", 200) || *ok.CreateTask.JiraID != "A1-1" {
			t.Fatalf("created %q %v", ok.CreateTask.Title, ok.CreateTask.JiraID)
		}
		var none struct{ CreateTask taskNode }
		g.Query(t, w.Token, createTaskMutation, taskInput("Fix", jira(""), "d")).MustOK(t, &none)
		if none.CreateTask.JiraID != nil {
			t.Fatalf("an empty jiraId was stored as %q, want null", *none.CreateTask.JiraID)
		}
	})
	t.Cleanup(func() {
		// Only the two valid creations were stored.
		var list struct{ Tasks taskConnection }
		g.Query(t, w.Token, tasksQuery, nil).MustOK(t, &list)
		if list.Tasks.TotalCount != 2 {
			t.Errorf("%d tasks stored, want 2", list.Tasks.TotalCount)
		}
	})
}

// TestCreateTaskWithNobodyAssignable: R-TASK-2 — a clear CONFLICT, and nothing is stored.
func TestCreateTaskWithNobodyAssignable(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	u := g.MustPopugs(t, map[string]identity.Role{"manager": identity.Manager, "worker": identity.Worker})
	g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": u["worker"].ID}).MustOK(t, nil)
	g.SyncReplica(t)
	e := g.Query(t, u["manager"].Token, createTaskMutation, taskInput("Fix", nil, "d")).MustError(t, "CONFLICT")
	if !strings.Contains(e.Message, "no popug") {
		t.Fatalf("message = %q", e.Message)
	}
	var list struct{ Tasks taskConnection }
	g.Query(t, g.AdminToken, tasksQuery, nil).MustOK(t, &list)
	if list.Tasks.TotalCount != 0 {
		t.Fatalf("%d tasks stored", list.Tasks.TotalCount)
	}
	// With open tasks and nobody assignable, a shuffle is a CONFLICT too.
	g.Query(t, g.AdminToken, roleMutation, map[string]any{"id": u["manager"].ID, "role": "WORKER"}).MustOK(t, nil)
	g.SyncReplica(t)
	g.MustTask(t, g.AdminToken, "Fix")
	g.Query(t, g.AdminToken, roleMutation, map[string]any{"id": u["manager"].ID, "role": "ADMIN"}).MustOK(t, nil)
	g.SyncReplica(t)
	g.Query(t, g.AdminToken, shuffleTasksMutation, nil).MustError(t, "CONFLICT")
}

// TestTaskLists: R-TASK-1, R-TASK-6, R-API-5 — the dashboard pages newest first with stable
// cursors and totalCount, filters by status and assignee; myTasks is the caller's own.
func TestTaskLists(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	u := g.MustPopugs(t, map[string]identity.Role{"popug1": identity.Worker, "popug2": identity.Worker})
	var all []taskNode // newest first
	for i := range 25 {
		tk := g.MustTask(t, g.AdminToken, fmt.Sprintf("task %02d", i))
		g.Clock.Advance(time.Second)
		if i%4 == 0 {
			var co struct{ CompleteTask taskNode }
			g.Query(t, tokenOf(u, tk.Assignee.ID), completeTaskMutation, map[string]any{"id": tk.ID}).MustOK(t, &co)
			tk = co.CompleteTask
		}
		all = append([]taskNode{tk}, all...)
	}
	filter := func(keep func(taskNode) bool) []taskNode {
		var out []taskNode
		for _, tk := range all {
			if keep(tk) {
				out = append(out, tk)
			}
		}
		return out
	}

	// Three pages of 10, 10 and 5, newest first.
	got := pages(t, g, g.AdminToken, tasksQuery, map[string]any{"first": 10}, "tasks", len(all), []int{10, 10, 5})
	assertSame(t, "tasks", got, all)
	// Paging again gives the same order.
	assertSame(t, "tasks again", pages(t, g, u["popug2"].Token, tasksQuery, map[string]any{"first": 10}, "tasks", len(all), []int{10, 10, 5}), all)

	p1 := u["popug1"].ID
	ofP1 := filter(func(tk taskNode) bool { return tk.Assignee.ID == p1 })
	if len(ofP1) == 0 || len(ofP1) == len(all) {
		t.Fatalf("p1 has %d of %d tasks; the test needs a mix", len(ofP1), len(all))
	}
	cases := []struct {
		name string
		vars map[string]any
		want []taskNode
	}{
		{"open", map[string]any{"status": "OPEN"}, filter(func(tk taskNode) bool { return tk.Status == "OPEN" })},
		{"done", map[string]any{"status": "DONE"}, filter(func(tk taskNode) bool { return tk.Status == "DONE" })},
		{"p1's", map[string]any{"assigneeId": p1}, ofP1},
		{"p1's done", map[string]any{"assigneeId": p1, "status": "DONE"}, filter(func(tk taskNode) bool { return tk.Assignee.ID == p1 && tk.Status == "DONE" })},
		{"unknown assignee", map[string]any{"assigneeId": uuid.NewString()}, nil},
	}
	for _, c := range cases {
		c.vars["first"] = 4
		assertSame(t, c.name, pages(t, g, g.AdminToken, tasksQuery, c.vars, "tasks", len(c.want), nil), c.want)
	}
	for _, name := range []string{"popug1", "popug2"} {
		id := u[name].ID
		assertSame(t, name+"'s myTasks", pages(t, g, u[name].Token, myTasksQuery, map[string]any{"first": 3}, "myTasks", -1, nil),
			filter(func(tk taskNode) bool { return tk.Assignee.ID == id }))
		assertSame(t, name+"'s open myTasks", pages(t, g, u[name].Token, myTasksQuery, map[string]any{"first": 3, "status": "OPEN"}, "myTasks", -1, nil),
			filter(func(tk taskNode) bool { return tk.Assignee.ID == id && tk.Status == "OPEN" }))
	}

	// The default page is 20 (R-API-5); 100 is allowed, 101 refused.
	var def struct{ Tasks taskConnection }
	g.Query(t, g.AdminToken, tasksQuery, nil).MustOK(t, &def)
	if len(def.Tasks.Edges) != 20 || !def.Tasks.PageInfo.HasNextPage || def.Tasks.TotalCount != 25 {
		t.Fatalf("default page: %d edges, %+v, total %d", len(def.Tasks.Edges), def.Tasks.PageInfo, def.Tasks.TotalCount)
	}
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"first": 100}).MustOK(t, &def)
	if len(def.Tasks.Edges) != 25 || def.Tasks.PageInfo.HasNextPage {
		t.Fatalf("first 100: %d edges, %+v", len(def.Tasks.Edges), def.Tasks.PageInfo)
	}
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"first": 101}).MustFieldError(t, "first")
	g.Query(t, g.AdminToken, `{ tasks(first: 101) { totalCount } }`, nil).MustFieldError(t, "first")
	g.Query(t, u["popug1"].Token, myTasksQuery, map[string]any{"first": 101}).MustFieldError(t, "first")
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"first": -1}).MustFieldError(t, "first")
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"after": "garbage"}).MustFieldError(t, "after")
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"after": base64.RawURLEncoding.EncodeToString([]byte("c:0"))}).MustFieldError(t, "after")
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"assigneeId": "nobody"}).MustFieldError(t, "assigneeId")
	g.Query(t, g.AdminToken, tasksQuery, map[string]any{"status": "CLOSED"}).MustError(t, "BAD_USER_INPUT")

	// task(id): unknown is null without an error, malformed is BAD_USER_INPUT.
	r := g.Query(t, u["popug2"].Token, taskQuery, map[string]any{"id": uuid.NewString()})
	var one struct{ Task *taskNode }
	r.MustOK(t, &one)
	if one.Task != nil || !strings.Contains(r.Body, `"task":null`) {
		t.Fatalf("task(unknown id) = %s, want null", r.Body)
	}
	g.Query(t, u["popug2"].Token, taskQuery, map[string]any{"id": "123"}).MustFieldError(t, "id")
}

// tokenOf returns the token of the user with the id.
func tokenOf(users map[string]User, id string) string {
	for _, u := range users {
		if u.ID == id {
			return u.Token
		}
	}
	return ""
}

// pages walks a task connection page by page from vars (which sets first) and returns the
// nodes. It checks every page's bookkeeping: totalCount (when total >= 0), hasNextPage,
// hasPreviousPage, the cursors, and the page sizes (when sizes is not nil).
func pages(tb testing.TB, g *Gateway, token, query string, vars map[string]any, field string, total int, sizes []int) []taskNode {
	tb.Helper()
	var out []taskNode
	v := map[string]any{}
	for k, x := range vars {
		v[k] = x
	}
	for n := 0; ; n++ {
		if n > 100 {
			tb.Fatal("pagination does not end")
		}
		var data map[string]taskConnection
		g.Query(tb, token, query, v).MustOK(tb, &data)
		c := data[field]
		if total >= 0 && c.TotalCount != total {
			tb.Fatalf("page %d: totalCount %d, want %d", n, c.TotalCount, total)
		}
		if c.PageInfo.HasPreviousPage != (n > 0) {
			tb.Fatalf("page %d: hasPreviousPage %v", n, c.PageInfo.HasPreviousPage)
		}
		if sizes != nil && (n >= len(sizes) || len(c.Edges) != sizes[n]) {
			tb.Fatalf("page %d has %d edges, want sizes %v", n, len(c.Edges), sizes)
		}
		if len(c.Edges) > 0 && (*c.PageInfo.StartCursor != c.Edges[0].Cursor || *c.PageInfo.EndCursor != c.Edges[len(c.Edges)-1].Cursor) {
			tb.Fatalf("page %d: pageInfo cursors do not match the edges", n)
		}
		if len(c.Edges) == 0 && (c.PageInfo.StartCursor != nil || c.PageInfo.EndCursor != nil) {
			tb.Fatalf("empty page with cursors %+v", c.PageInfo)
		}
		for _, e := range c.Edges {
			out = append(out, e.Node)
		}
		if !c.PageInfo.HasNextPage {
			if sizes != nil && n != len(sizes)-1 {
				tb.Fatalf("%d pages, want %d", n+1, len(sizes))
			}
			if total >= 0 && len(out) != total {
				tb.Fatalf("the pages hold %d tasks, totalCount says %d", len(out), total)
			}
			return out
		}
		v["after"] = *c.PageInfo.EndCursor
	}
}

func assertSame(tb testing.TB, name string, got, want []taskNode) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: %d tasks, want %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i].flat() != want[i].flat() {
			tb.Fatalf("%s: task %d = %+v, want %+v", name, i, got[i], want[i])
		}
	}
}

// accountsByID matches the dataloader's query of the auth database: one SELECT of accounts by a
// list of public ids (R-TASK-1: the assignee of every task on a page).
var accountsByID = regexp.MustCompile("(?is)^SELECT .* FROM [`\"]accounts[`\"] WHERE .*public_id[`\"]? IN \\(")

// TestTaskAssigneeIsBatched: a page of 50 tasks with 10 distinct assignees resolves every
// assignee with ONE query to the auth database, counted on the real driver (no N+1).
func TestTaskAssigneeIsBatched(t *testing.T) {
	t.Parallel()
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t, OnDialect(d))
			roles := map[string]identity.Role{}
			for i := range 10 {
				roles[fmt.Sprintf("popug%d", i)] = identity.Worker
			}
			u := g.MustPopugs(t, roles)
			// 50 tasks, assignee i%10, straight into the tasks database.
			ctx := context.Background()
			var want []string // assignee usernames, newest first
			bulk := make([]*tasksdb.TaskCreate, 50)
			for i := range bulk {
				name := fmt.Sprintf("popug%d", i%10)
				bulk[i] = g.TasksClient.Task.Create().SetPublicID(uuid.New()).SetTitle(fmt.Sprintf("task %d", i)).
					SetDescription("d").SetAssigneeID(uuid.MustParse(u[name].ID)).SetCreatedAt(start)
				want = append([]string{name}, want...)
			}
			if err := g.TasksClient.Task.CreateBulk(bulk...).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			const q = `{ tasks(first: 50) { edges { node { id assignee { id username email role } } } } }`
			for round := range 3 {
				before := g.AuthQueries.Len()
				var out struct{ Tasks taskConnection }
				g.Query(t, u["popug3"].Token, q, nil).MustOK(t, &out)
				queries := g.AuthQueries.Since(before)
				if len(out.Tasks.Edges) != 50 {
					t.Fatalf("%d edges", len(out.Tasks.Edges))
				}
				for i, e := range out.Tasks.Edges {
					a := u[want[i]]
					if e.Node.Assignee.ID != a.ID || e.Node.Assignee.Username != a.Username || e.Node.Assignee.Role != "WORKER" ||
						e.Node.Assignee.Email != a.Username+"@uberpopug.com" {
						t.Fatalf("task %d: assignee %+v, want %s", i, e.Node.Assignee, want[i])
					}
				}
				matched := 0
				for _, q := range queries {
					if accountsByID.MatchString(q) {
						matched++
					}
				}
				if len(queries) != 1 || matched != 1 {
					t.Fatalf("round %d: the page's assignees took %d auth queries (%d by id), want 1:\n%s",
						round, len(queries), matched, strings.Join(queries, "\n"))
				}
			}
			// Through a fragment, and in myTasks: one query. Without assignee: none.
			for _, c := range []struct {
				token, query string
				want         int
			}{
				{u["popug3"].Token, `fragment A on Task { assignee { username } } { tasks(first: 50) { edges { node { ...A } } } }`, 1},
				{u["popug3"].Token, `{ t: tasks(first: 50, status: OPEN) { edges { n: node { ... on Task { a: assignee { id } } } } } }`, 1},
				{u["popug3"].Token, `{ myTasks(first: 50) { edges { node { assignee { username } } } } }`, 1},
				{u["popug3"].Token, `{ tasks(first: 50) { totalCount edges { cursor node { id title } } } }`, 0},
			} {
				before := g.AuthQueries.Len()
				r := g.Query(t, c.token, c.query, nil)
				r.MustOK(t, nil)
				if got := g.AuthQueries.Since(before); len(got) != c.want {
					t.Fatalf("%s took %d auth queries, want %d:\n%s", c.query, len(got), c.want, strings.Join(got, "\n"))
				}
				if c.want > 0 && strings.Count(r.Body, u["popug7"].ID)+strings.Count(r.Body, "popug7") == 0 && !strings.Contains(c.query, "myTasks") {
					t.Fatalf("%s: no assignee in %s", c.query, r.Body)
				}
			}
		})
	}
}
