package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/uberpopug/ates/services/money"
)

// Live balance (R-ACC-10) over WebSocket (R-API-2) through the real `ates` process.

// wsProto names one GraphQL-over-WebSocket subprotocol's message types.
type wsProto struct {
	Name, Subscribe, Next, Stop string
}

var (
	transportWS = wsProto{Name: "graphql-transport-ws", Subscribe: "subscribe", Next: "next", Stop: "complete"}
	legacyWS    = wsProto{Name: "graphql-ws", Subscribe: "start", Next: "data", Stop: "stop"}
)

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsConn is one authenticated GraphQL WebSocket; a reader goroutine queues its messages.
type wsConn struct {
	proto wsProto
	conn  *websocket.Conn
	msgs  chan wsMsg
	err   chan error // the read error that ended the reader
}

// mustDialWS opens base's /graphql with the subprotocol and authenticates with the token in
// connection_init's payload (R-API-2).
func mustDialWS(tb testing.TB, base string, proto wsProto, token string) *wsConn {
	tb.Helper()
	c, err := dialWS(base, proto, token)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.close)
	return c
}

// dialWS opens the socket, queueing up to 1024 unread messages.
func dialWS(base string, proto wsProto, token string) (*wsConn, error) {
	const buffer = 1024
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{proto.Name}})
	if err != nil {
		return nil, fmt.Errorf("dialing %s with %s: %w", url, proto.Name, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	if conn.Subprotocol() != proto.Name {
		conn.CloseNow()
		return nil, fmt.Errorf("negotiated subprotocol %q, want %q", conn.Subprotocol(), proto.Name)
	}
	conn.SetReadLimit(1 << 20)
	c := &wsConn{proto: proto, conn: conn, msgs: make(chan wsMsg, buffer), err: make(chan error, 1)}
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	if err := c.send(map[string]any{"type": "connection_init", "payload": payload}); err != nil {
		conn.CloseNow()
		return nil, err
	}
	var ack wsMsg
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		conn.CloseNow()
		return nil, fmt.Errorf("connection_init answered %+v (%v), want connection_ack", ack, err)
	}
	go c.read()
	return c, nil
}

func (c *wsConn) read() {
	for {
		var m wsMsg
		if err := wsjson.Read(context.Background(), c.conn, &m); err != nil {
			c.err <- err
			close(c.msgs)
			return
		}
		switch m.Type {
		case "ka", "pong":
		case "ping":
			_ = c.send(map[string]any{"type": "pong"})
		default:
			c.msgs <- m
		}
	}
}

func (c *wsConn) send(m any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return wsjson.Write(ctx, c.conn, m)
}

func (c *wsConn) close() { _ = c.conn.Close(websocket.StatusNormalClosure, "") }

// subscribe starts an operation on the socket.
func (c *wsConn) subscribe(tb testing.TB, id, query string, vars map[string]any) {
	tb.Helper()
	if err := c.send(map[string]any{"id": id, "type": c.proto.Subscribe, "payload": map[string]any{"query": query, "variables": vars}}); err != nil {
		tb.Fatalf("subscribing %s: %v", id, err)
	}
}

// next returns the socket's next message, or an error after the timeout.
func (c *wsConn) next(timeout time.Duration) (wsMsg, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return wsMsg{}, fmt.Errorf("socket closed: %v", <-c.err)
		}
		return m, nil
	case <-time.After(timeout):
		return wsMsg{}, errTimeout
	}
}

var errTimeout = errors.New("timeout")

// subscriptionError subscribes and returns the codes of the errors the operation ends with;
// it fails when the operation yields data instead.
func (c *wsConn) subscriptionError(tb testing.TB, id, query string, vars map[string]any) []string {
	tb.Helper()
	c.subscribe(tb, id, query, vars)
	var codes []string
	for {
		m, err := c.next(10 * time.Second)
		if err != nil {
			tb.Fatalf("waiting for %s's error: %v", id, err)
		}
		if m.ID != id {
			tb.Fatalf("message %+v while waiting for %s's error", m, id)
		}
		var errs []struct {
			Message    string
			Extensions map[string]any
		}
		switch m.Type {
		case "error":
			if err := json.Unmarshal(m.Payload, &errs); err != nil {
				var one struct {
					Message    string
					Extensions map[string]any
				}
				if err := json.Unmarshal(m.Payload, &one); err != nil {
					tb.Fatalf("error payload %s: %v", m.Payload, err)
				}
				errs = append(errs, one)
			}
		case c.proto.Next:
			var r struct {
				Data   json.RawMessage
				Errors []struct {
					Message    string
					Extensions map[string]any
				}
			}
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				tb.Fatal(err)
			}
			if d := strings.TrimSpace(string(r.Data)); d != "" && d != "null" {
				tb.Fatalf("%s answered data %s, want an error", id, d)
			}
			errs = r.Errors
		case "complete":
			if len(codes) == 0 {
				tb.Fatalf("%s completed without an error", id)
			}
			return codes
		default:
			tb.Fatalf("unexpected message %+v", m)
		}
		for _, e := range errs {
			code, _ := e.Extensions["code"].(string)
			if e.Message == "" || strings.Contains(e.Message, "goroutine") {
				tb.Errorf("%s error %+v", id, e)
			}
			codes = append(codes, code)
		}
		if m.Type == "error" {
			return codes // an error message ends the operation
		}
	}
}

// push is one balanceChanged payload.
type push struct {
	AccountID, Balance string
	Entry              struct {
		ID, Type, Amount, BalanceAfter, Description, Day string
		OccurredAt                                       time.Time
		Task                                             *struct{ ID, Status string }
	}
	received time.Time
}

const balanceSubscription = `subscription($id: ID) { balanceChanged(accountId: $id) {
	accountId balance entry { id type amount balanceAfter description day occurredAt task { id status } } } }`

// balanceSub is one balanceChanged subscription on a socket. It keeps every push it gets, in
// order, including those the test skips (pushes of warm-up tasks), to check that balances chain.
type balanceSub struct {
	name string
	c    *wsConn
	id   string
	mu   sync.Mutex
	skip map[string]bool // task ids whose pushes next skips
	all  []push
}

// mustSubscribeBalance subscribes the socket to balanceChanged (all of the caller's, or the
// account's when accountID is not "").
func mustSubscribeBalance(tb testing.TB, name string, c *wsConn, accountID string) *balanceSub {
	tb.Helper()
	vars := map[string]any{}
	if accountID != "" {
		vars["id"] = accountID
	}
	s := &balanceSub{name: name, c: c, id: "balance-" + name, skip: map[string]bool{}}
	c.subscribe(tb, s.id, balanceSubscription, vars)
	return s
}

// next returns the next push not skipped, or an error after the timeout.
func (s *balanceSub) next(timeout time.Duration) (push, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := s.c.next(time.Until(deadline))
		if err != nil {
			return push{}, err
		}
		if m.ID != s.id || m.Type != s.c.proto.Next {
			return push{}, fmt.Errorf("%s: unexpected message %+v", s.name, m)
		}
		var r struct {
			Data struct {
				BalanceChanged push
			}
			Errors []any
		}
		if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) > 0 {
			return push{}, fmt.Errorf("%s: push %s (%v)", s.name, m.Payload, err)
		}
		p := r.Data.BalanceChanged
		p.received = time.Now()
		s.mu.Lock()
		s.all = append(s.all, p)
		skip := p.Entry.Task != nil && s.skip[p.Entry.Task.ID]
		s.mu.Unlock()
		if !skip {
			return p, nil
		}
	}
}

// drain records the pushes that arrive until none has for the quiet period.
func (s *balanceSub) drain(tb testing.TB, quiet time.Duration) {
	tb.Helper()
	for {
		_, err := s.next(quiet)
		if errors.Is(err, errTimeout) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func (s *balanceSub) mustNext(tb testing.TB) push {
	tb.Helper()
	p, err := s.next(20 * time.Second)
	if err != nil {
		tb.Fatalf("%s: waiting for a push: %v", s.name, err)
	}
	return p
}

// mustSync makes sure the subscriptions are registered with their gateways' hubs: the
// subscribe message gets no answer, so it causes balance changes (trigger returns the task
// it created) until every subscription has seen a push. Later pushes of those tasks are skipped.
func mustSync(tb testing.TB, trigger func() string, subs ...*balanceSub) {
	tb.Helper()
	synced := make([]bool, len(subs))
	for try := 0; ; try++ {
		if try == 50 {
			tb.Fatalf("subscriptions %v never got a push", synced)
		}
		task := trigger()
		for _, s := range subs {
			s.mu.Lock()
			s.skip[task] = true
			s.mu.Unlock()
		}
		done := true
		for i, s := range subs {
			if synced[i] {
				continue
			}
			for wait := time.Now().Add(time.Second); !synced[i] && time.Now().Before(wait); {
				_, err := s.next(20 * time.Millisecond) // every push of this phase is skipped
				if !errors.Is(err, errTimeout) {
					tb.Fatalf("%s: %v", s.name, err)
				}
				s.mu.Lock()
				synced[i] = len(s.all) > 0
				s.mu.Unlock()
			}
			done = done && synced[i]
		}
		if done {
			return
		}
	}
}

// checkChain checks that the subscription's pushes, in arrival order, chain per account:
// each balance is the account's previous pushed balance plus the entry's amount, as the ledger
// applied them — nothing lost, duplicated or reordered since the first push.
func (s *balanceSub) checkChain(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[string]money.Cents{}
	for i, p := range s.all {
		bal, amount := cents(tb, p.Balance), cents(tb, p.Entry.Amount)
		if p.Balance != p.Entry.BalanceAfter {
			tb.Errorf("%s push %d: balance %s ≠ entry's balance after %s", s.name, i, p.Balance, p.Entry.BalanceAfter)
		}
		if prev, ok := last[p.AccountID]; ok && prev+amount != bal {
			tb.Errorf("%s push %d (%s %s of %s): balance %s ≠ previous %s + amount", s.name, i, p.Entry.Type, p.Entry.Amount, p.AccountID, p.Balance, prev)
		}
		last[p.AccountID] = bal
	}
}

// describes reports whether a push's description reads prefix + the task's label. The label
// is the Jira id and title once accounting has heard of the task's creation; when the
// assignment was applied first (events of one task may be applied in any order, R-ACC-4) the
// event — and so the push — carries the task id instead, while the audit log shows the label.
func describes(p push, prefix string) bool {
	d := p.Entry.Description
	return strings.HasPrefix(d, prefix+"UBERPOP-") || (p.Entry.Task != nil && d == prefix+p.Entry.Task.ID)
}

// checkFee checks a FEE push for a task just assigned to the account.
func checkFee(tb testing.TB, p push, accountID, taskID string) {
	tb.Helper()
	fee := -cents(tb, p.Entry.Amount)
	if p.AccountID != accountID || p.Entry.Type != "FEE" || p.Entry.Task == nil || p.Entry.Task.ID != taskID ||
		fee < money.Dollars(10) || fee > money.Dollars(20) || !describes(p, "Fee for task ") {
		tb.Fatalf("push %+v (task %+v), want the fee of task %s for %s", p, p.Entry.Task, taskID, accountID)
	}
}

// checkReward checks a REWARD push for a task the account just completed.
func checkReward(tb testing.TB, p push, accountID, taskID string) {
	tb.Helper()
	reward := cents(tb, p.Entry.Amount)
	if p.AccountID != accountID || p.Entry.Type != "REWARD" || p.Entry.Task == nil || p.Entry.Task.ID != taskID ||
		reward < money.Dollars(20) || reward > money.Dollars(40) || !describes(p, "Reward for task ") {
		tb.Fatalf("push %+v (task %+v), want the reward of task %s for %s", p, p.Entry.Task, taskID, accountID)
	}
	// The task as it is now: the push is resolved when it is sent, not from a cache of the
	// subscription's start.
	if p.Entry.Task.Status != "DONE" {
		tb.Errorf("the reward push shows task %s as %s, want DONE", taskID, p.Entry.Task.Status)
	}
}

func mustComplete(tb testing.TB, base, token, taskID string) {
	tb.Helper()
	mustDo(tb, base, token, `mutation($id:ID!){completeTask(id:$id){id}}`, map[string]any{"id": taskID}, nil)
}

// checkPushesInLedger checks that every push of the account is an entry of its ledger, as
// the ledger has it.
func checkPushesInLedger(tb testing.TB, base, token, accountID string, subs ...*balanceSub) {
	tb.Helper()
	var balance struct{ BillingAccount struct{ Balance string } }
	mustDo(tb, base, token, `query($id:ID!){billingAccount(accountId:$id){balance}}`, map[string]any{"id": accountID}, &balance)
	ledger := map[string]string{}
	var after *string
	for {
		var r struct {
			BillingAccount struct {
				Entries struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   *string
					}
					Edges []struct {
						Node struct{ ID, Type, Amount, BalanceAfter, Day string }
					}
				}
			}
		}
		mustDo(tb, base, token, `query($id:ID!,$after:String){billingAccount(accountId:$id){
			entries(first:100,after:$after){pageInfo{hasNextPage endCursor} edges{node{id type amount balanceAfter day}}}}}`,
			map[string]any{"id": accountID, "after": after}, &r)
		for _, e := range r.BillingAccount.Entries.Edges {
			n := e.Node
			ledger[n.ID] = n.Type + " " + n.Amount + " " + n.BalanceAfter + " " + n.Day
		}
		if !r.BillingAccount.Entries.PageInfo.HasNextPage {
			break
		}
		after = r.BillingAccount.Entries.PageInfo.EndCursor
	}
	for _, s := range subs {
		// Pushes may still be on their way: take them in until the last one shows the balance.
		lastBalance := func() string {
			s.mu.Lock()
			defer s.mu.Unlock()
			for i := len(s.all) - 1; i >= 0; i-- {
				if s.all[i].AccountID == accountID {
					return s.all[i].Balance
				}
			}
			return ""
		}
		for wait := time.Now().Add(10 * time.Second); time.Now().Before(wait); {
			if b := lastBalance(); b == "" || b == balance.BillingAccount.Balance {
				break
			}
			s.drain(tb, 100*time.Millisecond)
		}
		s.mu.Lock()
		var last string
		for _, p := range s.all {
			if p.AccountID != accountID {
				continue
			}
			last = p.Balance
			got := p.Entry.Type + " " + p.Entry.Amount + " " + p.Entry.BalanceAfter + " " + p.Entry.Day
			if ledger[p.Entry.ID] != got {
				tb.Errorf("%s pushed entry %s as %q; the ledger has %q", s.name, p.Entry.ID, got, ledger[p.Entry.ID])
			}
		}
		s.mu.Unlock()
		if last != "" && last != balance.BillingAccount.Balance {
			tb.Errorf("%s: the last pushed balance %s ≠ the balance %s", s.name, last, balance.BillingAccount.Balance)
		}
	}
}

// TestRunBalanceChangedLive follows balances live through the embedded default (R-ACC-10): a
// worker's own account on both subprotocols, the access rules, and an accountant following
// every account.
func TestRunBalanceChangedLive(t *testing.T) {
	proc, base := MustStart(t, []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + t.TempDir(),
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	})
	logProblemsOnFailure(t, "ates", proc)
	bossToken, bossID := mustLogin(t, base, "boss", "boss-beak-print")
	mgr := mustCreatePopug(t, base, bossToken, "max", "MANAGER")
	kiwi := mustSignUp(t, base, "kiwi") // the only assignable popug for now
	n := 0
	createTask := func(token string) createdTask { n++; return mustCreateTask(t, base, token, n) }

	// Over graphql-transport-ws, accountId omitted: the worker's own account; over the legacy
	// graphql-ws, the worker's own id given explicitly.
	own := mustSubscribeBalance(t, "kiwi/transport-ws", mustDialWS(t, base, transportWS, kiwi.Token), "")
	legacy := mustSubscribeBalance(t, "kiwi/graphql-ws", mustDialWS(t, base, legacyWS, kiwi.Token), kiwi.ID)
	mustSync(t, func() string { return createTask(mgr.Token).ID }, own, legacy)

	task := createTask(mgr.Token)
	if task.Assignee.ID != kiwi.ID {
		t.Fatalf("task assigned to %s, want kiwi, the only assignable popug", task.Assignee.ID)
	}
	for _, s := range []*balanceSub{own, legacy} {
		p := s.mustNext(t)
		checkFee(t, p, kiwi.ID, task.ID)
		if p.Entry.Task.Status != "OPEN" {
			t.Errorf("%s: the fee push shows the task %s, want OPEN", s.name, p.Entry.Task.Status)
		}
	}
	mustComplete(t, base, kiwi.Token, task.ID)
	for _, s := range []*balanceSub{own, legacy} {
		checkReward(t, s.mustNext(t), kiwi.ID, task.ID)
	}

	// R-ACC-10: a worker or a manager follows only their own account.
	for _, p := range []*popug{kiwi, mgr} {
		for _, proto := range []wsProto{transportWS, legacyWS} {
			c := mustDialWS(t, base, proto, p.Token)
			if codes := c.subscriptionError(t, "other", balanceSubscription, map[string]any{"id": bossID}); len(codes) != 1 || codes[0] != "FORBIDDEN" {
				t.Errorf("%s over %s following another account: codes %v, want FORBIDDEN", p.Role, proto.Name, codes)
			}
		}
	}
	c := mustDialWS(t, base, transportWS, kiwi.Token)
	if codes := c.subscriptionError(t, "bad", balanceSubscription, map[string]any{"id": "nope"}); len(codes) != 1 || codes[0] != "BAD_USER_INPUT" {
		t.Errorf("a malformed accountId: codes %v, want BAD_USER_INPUT", codes)
	}
	anon := mustDialWS(t, base, transportWS, "")
	if codes := anon.subscriptionError(t, "anon", balanceSubscription, nil); len(codes) != 1 || codes[0] != "UNAUTHENTICATED" {
		t.Errorf("an unauthenticated subscription: codes %v, want UNAUTHENTICATED", codes)
	}

	// An accountant follows every account (accountId omitted); an admin follows one.
	acc := mustCreatePopug(t, base, bossToken, "acc", "ACCOUNTANT")
	rio := mustSignUp(t, base, "rio")
	waitFor(t, "rio's billing account", func() (bool, string) {
		r := mustGraphQL(t, base, acc.Token, `query($id:ID!){billingAccount(accountId:$id){balance}}`, map[string]any{"id": rio.ID})
		return len(r.Errors) == 0, fmt.Sprint(r.Errors)
	})
	everyone := mustSubscribeBalance(t, "accountant/all", mustDialWS(t, base, transportWS, acc.Token), "")
	rioOnly := mustSubscribeBalance(t, "admin/rio", mustDialWS(t, base, legacyWS, bossToken), rio.ID)
	// Until a task lands on rio; each task's fee reaches the accountant.
	mustSync(t, func() string { return createTask(mgr.Token).ID }, everyone, rioOnly)
	assignees := map[string]bool{}
	var created []createdTask
	for len(created) < 40 && (len(assignees) < 2 || len(created) < 6) {
		task := createTask(mgr.Token)
		created = append(created, task)
		assignees[task.Assignee.ID] = true
	}
	if len(assignees) < 2 {
		t.Fatalf("%d tasks all went to one popug", len(created))
	}
	// Entries of different tasks may be applied in any order: match pushes to tasks.
	byTask := func(s *balanceSub, n int) map[string]push {
		got := map[string]push{}
		for range n {
			p := s.mustNext(t)
			if p.Entry.Task == nil || got[p.Entry.Task.ID].AccountID != "" {
				t.Fatalf("%s: push %+v is not one fee per task", s.name, p)
			}
			got[p.Entry.Task.ID] = p
		}
		return got
	}
	toRio := 0
	for _, task := range created {
		if task.Assignee.ID == rio.ID {
			toRio++
		}
	}
	fees, rioFees := byTask(everyone, len(created)), byTask(rioOnly, toRio)
	for _, task := range created {
		checkFee(t, fees[task.ID], task.Assignee.ID, task.ID)
		if task.Assignee.ID == rio.ID {
			checkFee(t, rioFees[task.ID], rio.ID, task.ID)
		}
	}
	// Take in the pushes still on their way, then check what each subscription saw.
	for _, s := range []*balanceSub{own, legacy, everyone, rioOnly} {
		s.drain(t, 300*time.Millisecond)
	}
	rioOnly.mu.Lock()
	for _, p := range rioOnly.all {
		if p.AccountID != rio.ID {
			t.Errorf("the admin following rio got a push for %s", p.AccountID)
		}
	}
	rioOnly.mu.Unlock()
	for _, s := range []*balanceSub{own, legacy, everyone, rioOnly} {
		s.checkChain(t)
	}
	for _, p := range []*popug{kiwi, rio, acc} {
		checkPushesInLedger(t, base, acc.Token, p.ID, own, legacy, everyone, rioOnly)
	}

	// A shuffle reassigns every open task at once: its burst of fees reaches a subscriber that
	// reads as fast as it can — a burst is not a subscriber that cannot keep up.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 12 {
				mustCreateTask(t, base, mgr.Token, 10000+i*100+j)
			}
		})
	}
	wg.Wait()
	for _, s := range []*balanceSub{own, legacy, everyone, rioOnly} {
		s.drain(t, 300*time.Millisecond)
		s.mu.Lock()
		clear(s.skip) // the shuffle reassigns the warm-up tasks too
		s.mu.Unlock()
	}
	var shuffled struct{ ShuffleTasks struct{ Reassigned int } }
	mustDo(t, base, mgr.Token, `mutation{shuffleTasks{reassigned}}`, nil, &shuffled)
	if shuffled.ShuffleTasks.Reassigned < 100 {
		t.Fatalf("the shuffle reassigned %d tasks, want at least 100", shuffled.ShuffleTasks.Reassigned)
	}
	for i := range shuffled.ShuffleTasks.Reassigned {
		if p, err := everyone.next(20 * time.Second); err != nil || p.Entry.Type != "FEE" {
			t.Fatalf("the accountant got %d of the shuffle's %d fees, then %+v, %v", i, shuffled.ShuffleTasks.Reassigned, p, err)
		}
	}
	everyone.drain(t, 300*time.Millisecond)
	everyone.checkChain(t)
	for _, p := range []*popug{kiwi, rio, acc} {
		checkPushesInLedger(t, base, acc.Token, p.ID, everyone)
	}
}

// TestRunBalanceChangedAcrossGateways runs two gateways and a worker on PostgreSQL and
// RabbitMQ (R-OPS-2): a subscriber gets its pushes whichever gateway holds its socket, also
// when the change was made through the other gateway.
func TestRunBalanceChangedAcrossGateways(t *testing.T) {
	env := mustProduction(t)
	_, baseA := MustStart(t, env.Environ, "gateway")
	_, baseB := MustStart(t, env.Environ, "gateway")
	MustStart(t, env.Environ, "worker")
	if baseA == baseB {
		t.Fatalf("both gateways listen on %s", baseA)
	}
	bossToken, _ := mustLogin(t, baseA, "boss", "boss-beak-print")
	mgr := mustCreatePopug(t, baseA, bossToken, "max", "MANAGER")
	kiwi := mustSignUp(t, baseB, "kiwi") // the only assignable popug
	n := 0
	createTask := func() createdTask { n++; return mustCreateTask(t, baseA, mgr.Token, n) }

	onB := mustSubscribeBalance(t, "kiwi@B", mustDialWS(t, baseB, transportWS, kiwi.Token), "")
	onA := mustSubscribeBalance(t, "kiwi@A", mustDialWS(t, baseA, legacyWS, kiwi.Token), "")
	allOnB := mustSubscribeBalance(t, "boss@B", mustDialWS(t, baseB, transportWS, bossToken), "")
	mustSync(t, func() string { return createTask().ID }, onB, onA, allOnB)

	task := createTask() // through A
	if task.Assignee.ID != kiwi.ID {
		t.Fatalf("task assigned to %s, want kiwi", task.Assignee.ID)
	}
	for _, s := range []*balanceSub{onB, onA, allOnB} {
		checkFee(t, s.mustNext(t), kiwi.ID, task.ID)
	}
	mustComplete(t, baseA, kiwi.Token, task.ID)
	for _, s := range []*balanceSub{onB, onA, allOnB} {
		checkReward(t, s.mustNext(t), kiwi.ID, task.ID)
	}
	// And the other way round: a change through B reaches A.
	task2 := mustCreateTask(t, baseB, kiwi.Token, 1000)
	for _, s := range []*balanceSub{onA, onB, allOnB} {
		checkFee(t, s.mustNext(t), kiwi.ID, task2.ID)
	}
	for _, s := range []*balanceSub{onB, onA, allOnB} {
		s.drain(t, 500*time.Millisecond)
		s.checkChain(t)
	}
	checkPushesInLedger(t, baseB, bossToken, kiwi.ID, onB, onA, allOnB)
}
