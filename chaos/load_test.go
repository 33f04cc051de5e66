package chaos

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/money"
)

// population is everyone using aTES during the run.
type population struct {
	admin, accountant *actor
	managers, popugs  []*actor
}

func (p *population) all() []*actor {
	return append(append([]*actor{p.admin, p.accountant}, p.managers...), p.popugs...)
}

// populate creates the accounts through GraphQL — the popugs sign up, the admin creates the
// managers and the accountant — and logs everyone in.
func populate(t *testing.T, ctx context.Context, a *api, rec *recorder, popugs int) *population {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("load seed %d", seed)
	newActor := func(i int, name, role string) *actor {
		return &actor{name: name, username: name, password: name + "-beak-print", role: role, api: a, rec: rec,
			gw: i % 2, rnd: mrand.New(mrand.NewPCG(seed, uint64(i)))}
	}
	p := &population{admin: newActor(0, adminUsername, "ADMIN")}
	p.admin.password = adminPassword
	if err := p.admin.login(ctx); err != nil {
		t.Fatalf("admin login: %v", err)
	}
	p.accountant = newActor(1, "audit", "ACCOUNTANT")
	p.managers = []*actor{newActor(2, "manager1", "MANAGER"), newActor(3, "manager2", "MANAGER")}
	for i := range popugs {
		p.popugs = append(p.popugs, newActor(4+i, fmt.Sprintf("popug%02d", i+1), "WORKER"))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3+popugs)
	sem := make(chan struct{}, 4) // the gateways hash a few beak prints at a time
	for _, c := range append([]*actor{p.accountant}, p.managers...) {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, data := p.admin.mutate(ctx, "createAccount", `mutation($in: CreateAccountInput!) { createAccount(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"username": c.username, "password": c.password, "fullName": "Chaos " + c.name,
					"email": c.username + "@uberpopug.local", "role": c.role}}, nil)
			if data == nil {
				errs <- fmt.Errorf("creating %s failed", c.name)
				return
			}
			if err := c.login(ctx); err != nil {
				errs <- err
			}
		})
	}
	for _, c := range p.popugs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, data := c.mutate(ctx, "signUp", `mutation($in: SignUpInput!) { signUp(input: $in) { token account { id } } }`,
				map[string]any{"in": map[string]any{"username": c.username, "password": c.password, "fullName": "Popug " + c.name,
					"email": c.username + "@uberpopug.local"}}, nil)
			var r struct {
				Token   string
				Account struct{ ID string }
			}
			if data == nil || decode(data, "signUp", &r) != nil {
				errs <- fmt.Errorf("%s could not sign up", c.name)
				return
			}
			c.token, c.id = r.Token, r.Account.ID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return p
}

// login logs the actor in (retrying while aTES is unavailable).
func (c *actor) login(ctx context.Context) error {
	_, data := c.mutate(ctx, "login", `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token account { id } } }`,
		map[string]any{"u": c.username, "p": c.password}, nil)
	var r struct {
		Token   string
		Account struct{ ID string }
	}
	if data == nil || decode(data, "login", &r) != nil {
		return fmt.Errorf("%s could not log in", c.name)
	}
	c.token, c.id = r.Token, r.Account.ID
	return nil
}

// popugLoop is a popug at work until ctx ends: now and then they create a task or complete one
// of their open tasks.
func (c *actor) popugLoop(ctx context.Context, every time.Duration) {
	for sleep(ctx, jitter(c.rnd, every)) {
		if c.rnd.IntN(100) < 45 {
			c.createTask(ctx)
			continue
		}
		data, err := c.query(ctx, c.gw, `{ myTasks(first: 20, status: OPEN) { edges { node { id } } } }`, nil)
		if err != nil {
			continue
		}
		var open struct {
			Edges []struct{ Node struct{ ID string } }
		}
		if decode(data, "myTasks", &open) != nil || len(open.Edges) == 0 {
			c.createTask(ctx)
			continue
		}
		id := open.Edges[c.rnd.IntN(len(open.Edges))].Node.ID
		c.mutate(ctx, "completeTask", `mutation($id: ID!) { completeTask(id: $id) { id status } }`,
			map[string]any{"id": id}, func(m *mutation) { m.TaskID = id })
	}
}

func (c *actor) createTask(ctx context.Context) {
	c.n++
	title := fmt.Sprintf("%s task %d", c.name, c.n)
	in := map[string]any{"title": title, "description": "Work made up by the fault suite for " + c.name + "."}
	if c.n%3 == 0 {
		in["jiraId"] = fmt.Sprintf("CHAOS-%d", c.n)
	}
	m, data := c.mutate(ctx, "createTask", `mutation($in: CreateTaskInput!) { createTask(input: $in) { id status } }`,
		map[string]any{"in": in}, func(m *mutation) { m.Title = title })
	var task struct{ ID string }
	if data != nil && decode(data, "createTask", &task) == nil {
		m.TaskID = task.ID
	}
}

// managerLoop shuffles every open task now and then until ctx ends (R-TASK-4).
func (c *actor) managerLoop(ctx context.Context, every time.Duration) {
	for sleep(ctx, jitter(c.rnd, every)) {
		c.shuffle(ctx)
	}
}

func (c *actor) shuffle(ctx context.Context) {
	m, data := c.mutate(ctx, "shuffleTasks", `mutation { shuffleTasks { reassigned } }`, nil, nil)
	var r struct{ Reassigned int }
	if data != nil && decode(data, "shuffleTasks", &r) == nil {
		m.Reassigned = r.Reassigned
	}
}

// closeDay closes the billing day now (R-ACC-8) and reports whether it was acknowledged.
func (c *actor) closeDay(ctx context.Context) (*mutation, bool) {
	m, data := c.mutate(ctx, "closeBillingDay", `mutation { closeBillingDay { day paidAccounts totalPaid } }`, nil, nil)
	var r struct {
		PaidAccounts int
		TotalPaid    string
	}
	if data == nil || decode(data, "closeBillingDay", &r) != nil {
		return m, false
	}
	total, err := money.Parse(r.TotalPaid)
	if err != nil {
		return m, false
	}
	m.Paid, m.TotalPaid = r.PaidAccounts, int64(total)
	return m, true
}

// jitter is d scaled by a factor in [0.5, 1.5).
func jitter(r *mrand.Rand, d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + r.Float64()))
}

// sockets are the live subscribers: every popug follows their balance (some their board too)
// on their gateway; the accountant follows every balance and the admin the whole board, on
// each gateway (pinned to it, so every gateway always has followers of everything).
func sockets(p *population) []*socket {
	var out []*socket
	for i, c := range p.popugs {
		f := []follow{{Kind: balanceFeed, Account: c.id}}
		if i%4 == 0 {
			f = append(f, follow{Kind: boardFeed, Account: c.id})
		}
		out = append(out, &socket{name: c.name, owner: c, follows: f, gw: c.gw})
	}
	for gw := range 2 {
		out = append(out,
			&socket{name: fmt.Sprintf("audit@gw%d", gw+1), owner: p.accountant, follows: []follow{{Kind: balanceFeed}}, gw: gw, pinned: true},
			&socket{name: fmt.Sprintf("boss@gw%d", gw+1), owner: p.admin, follows: []follow{{Kind: boardFeed}}, gw: gw, pinned: true})
	}
	return out
}
