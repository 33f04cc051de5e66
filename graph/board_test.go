package graph_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/tasks"
)

// TestTaskPriceIsBatched: R-LIVE-2 — a page of tasks shows every task's price as accounting drew
// it, with one accounting query per page however many tasks; a task accounting has not priced
// yet shows null.
func TestTaskPriceIsBatched(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		w := g.MustUser(t, "kiwi", identity.Worker)
		g.SyncReplica(t)
		for i := range 30 {
			g.Query(t, w.Token, `mutation($t: String!) { createTask(input: {title: $t, description: "d"}) { id } }`, map[string]any{"t": fmt.Sprintf("task %d", i)}).MustOK(t, nil)
		}
		g.PriceTasks(t)
		var unpriced struct{ CreateTask struct{ ID string } }
		g.Query(t, w.Token, `mutation { createTask(input: {title: "not priced yet", description: "d"}) { id } }`, nil).MustOK(t, &unpriced)

		const q = `{ tasks(first: 31) { edges { node { id price { fee reward } } } } }`
		before := g.AccountingQueries.Len()
		var out struct {
			Tasks struct {
				Edges []struct {
					Node struct {
						ID    string
						Price *struct{ Fee, Reward string }
					}
				}
			}
		}
		g.Query(t, w.Token, q, nil).MustOK(t, &out)
		if n := len(g.AccountingQueries.Since(before)); n != 1 {
			t.Fatalf("a page of 31 tasks took %d accounting queries, want 1:\n%s", n, strings.Join(g.AccountingQueries.Since(before), "\n"))
		}
		if len(out.Tasks.Edges) != 31 {
			t.Fatalf("%d edges", len(out.Tasks.Edges))
		}
		ids := make([]uuid.UUID, 0, 30)
		for _, e := range out.Tasks.Edges {
			if e.Node.ID == unpriced.CreateTask.ID {
				if e.Node.Price != nil {
					t.Fatalf("an unpriced task shows %+v", e.Node.Price)
				}
				continue
			}
			ids = append(ids, uuid.MustParse(e.Node.ID))
		}
		prices, errList := g.Accounting.Prices(context.Background(), ids)
		for i, e := range out.Tasks.Edges[1:] {
			if errList[i] != nil || e.Node.Price == nil || e.Node.Price.Fee != prices[i].Fee.String() || e.Node.Price.Reward != prices[i].Reward.String() {
				t.Fatalf("task %s: price %+v, accounting says %+v (%v)", e.Node.ID, e.Node.Price, prices[i], errList[i])
			}
		}
		// Without price, no accounting query at all.
		before = g.AccountingQueries.Len()
		g.Query(t, w.Token, `{ tasks(first: 31) { edges { node { id title } } } }`, nil).MustOK(t, nil)
		if n := len(g.AccountingQueries.Since(before)); n != 0 {
			t.Fatalf("a page without prices took %d accounting queries", n)
		}
	})
}

// TestSearchTasksThroughTheGateway: searchTasks (contract version 2) — any employee finds tasks
// by a piece of their text; strangers and blank searches are refused.
func TestSearchTasksThroughTheGateway(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		w := g.MustUser(t, "kiwi", identity.Worker)
		g.SyncReplica(t)
		for _, title := range []string{"Polish the beak", "Count feathers", "Beak inspection"} {
			g.Query(t, w.Token, `mutation($t: String!) { createTask(input: {title: $t, description: "d"}) { id } }`, map[string]any{"t": title}).MustOK(t, nil)
		}
		const q = `query($s: String!) { searchTasks(search: $s) { totalCount edges { node { title assignee { username } } } } }`
		var out struct {
			SearchTasks struct {
				TotalCount int
				Edges      []struct{ Node struct{ Title string } }
			}
		}
		g.Query(t, w.Token, q, map[string]any{"s": "BEAK"}).MustOK(t, &out)
		if out.SearchTasks.TotalCount != 2 || out.SearchTasks.Edges[0].Node.Title != "Beak inspection" || out.SearchTasks.Edges[1].Node.Title != "Polish the beak" {
			t.Fatalf("searchTasks = %+v", out.SearchTasks)
		}
		g.Query(t, "", q, map[string]any{"s": "beak"}).MustError(t, "UNAUTHENTICATED")
		g.Query(t, w.Token, q, map[string]any{"s": " "}).MustFieldError(t, "search")
	})
}

// TestServerInfo: anyone learns the business-day timezone and today's business day.
func TestServerInfo(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		var out struct {
			ServerInfo struct{ Timezone, Today string }
		}
		g.Query(t, "", `{ serverInfo { timezone today } }`, nil).MustOK(t, &out)
		if out.ServerInfo.Timezone != "UTC" || out.ServerInfo.Today != g.Clock.Now().Format(time.DateOnly) {
			t.Fatalf("serverInfo = %+v", out.ServerInfo)
		}
	})
}

// taskChangePush is one taskChanged push as a client reads it.
type taskChangePush struct {
	Kind             string
	Task             struct{ Title, Status string }
	PreviousAssignee *struct{ Username string }
}

// subscribeTasks starts a taskChanged subscription and waits until the hub holds it.
func (c *wsClient) subscribeTasks(tb testing.TB, g *Gateway, id, assignee string, want int) {
	tb.Helper()
	args := ""
	if assignee != "" {
		args = fmt.Sprintf(`(assigneeId: %q)`, assignee)
	}
	c.send(tb, map[string]any{"id": id, "type": c.p.subscribe, "payload": map[string]any{
		"query": `subscription { taskChanged` + args + ` { kind task { title status } previousAssignee { username } } }`,
	}})
	waitUntil(tb, fmt.Sprintf("%d task subscribers in the hub", want), func() (bool, string) {
		got := g.Hub.TaskSubscribers()
		return got == want, fmt.Sprintf("%d task subscribers", got)
	})
}

// mustTaskPush reads the next push of a taskChanged subscription.
func (c *wsClient) mustTaskPush(tb testing.TB, id string) taskChangePush {
	tb.Helper()
	m := c.mustRecv(tb)
	var r struct {
		Data   struct{ TaskChanged taskChangePush }
		Errors []GQLError
	}
	if m.ID != id || m.Type != c.p.next || json.Unmarshal(m.Payload, &r) != nil || len(r.Errors) > 0 {
		tb.Fatalf("want a push of %s, got %+v", id, m)
	}
	return r.Data.TaskChanged
}

// TestTaskChangedFollowsTheBoard: R-LIVE-1 — every creation, shuffle reassignment and
// completion reaches the followers of every task, and a popug's follower sees the changes of
// the tasks that popug holds or held; an event delivered twice is pushed once.
func TestTaskChangedFollowsTheBoard(t *testing.T) {
	t.Parallel()
	for _, p := range wsProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t)
			kiwi := g.MustUser(t, "kiwi", identity.Worker)
			boss := g.MustUser(t, "boss", identity.Manager)
			g.SyncReplica(t) // kiwi is the only assignable popug

			all, mine := MustDialWS(t, g, p), MustDialWS(t, g, p)
			all.init(t, boss.Token)
			mine.init(t, kiwi.Token)
			all.subscribeTasks(t, g, "all", "", 1)
			mine.subscribeTasks(t, g, "mine", kiwi.ID, 2)

			var created struct{ CreateTask struct{ ID string } }
			g.Query(t, boss.Token, `mutation { createTask(input: {title: "Polish the beak", description: "d"}) { id } }`, nil).MustOK(t, &created)
			g.Query(t, boss.Token, `mutation { shuffleTasks { reassigned } }`, nil).MustOK(t, nil)
			g.Query(t, kiwi.Token, `mutation($id: ID!) { completeTask(id: $id) { id } }`, map[string]any{"id": created.CreateTask.ID}).MustOK(t, nil)
			events := g.TaskEvents(t)
			if err := graph.PublishTaskChanges(context.Background(), g.Hub, g.Tasks, events); err != nil {
				t.Fatal(err)
			}
			if err := graph.PublishTaskChanges(context.Background(), g.Hub, g.Tasks, events); err != nil { // delivered again
				t.Fatal(err)
			}
			for _, c := range []struct {
				client *wsClient
				id     string
			}{{all, "all"}, {mine, "mine"}} {
				var kinds []string
				for range 3 {
					push := c.client.mustTaskPush(t, c.id)
					kinds = append(kinds, push.Kind)
					if push.Task.Title != "Polish the beak" {
						t.Fatalf("%s: push %+v", c.id, push)
					}
					if push.Kind == "REASSIGNED" && (push.PreviousAssignee == nil || push.PreviousAssignee.Username != "kiwi") {
						t.Fatalf("%s: reassignment without its previous assignee: %+v", c.id, push)
					}
				}
				if strings.Join(kinds, ",") != "CREATED,REASSIGNED,COMPLETED" {
					t.Fatalf("%s: kinds %v", c.id, kinds)
				}
			}
			// Nothing more came for the events delivered twice: the next message answers a query.
			if _, errs := all.operation(t, "after", `{ me { id } }`); len(errs) > 0 {
				t.Fatalf("me: %+v", errs)
			}
			// Someone else's task is not pushed to kiwi's follower.
			other := graph.TaskChangeForTest(uuid.NewString(), uuid.NewString())
			g.Hub.PublishTask(other)
			if push := all.mustTaskPush(t, "all"); push.Kind != "CREATED" {
				t.Fatalf("all: %+v", push)
			}
			if _, errs := mine.operation(t, "after", `{ me { id } }`); len(errs) > 0 {
				t.Fatalf("me: %+v", errs)
			}
			g.Query(t, "", `subscription { taskChanged { kind } }`, nil).MustError(t, "BAD_USER_INPUT")
		})
	}
}

// TestTaskChangedResync: R-LIVE-1, R-REL-1 — a follower the gateway cannot keep current gets an
// error with extensions.code RESYNC that ends its subscription; the socket stays open.
func TestTaskChangedResync(t *testing.T) {
	t.Parallel()
	for _, p := range wsProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t)
			kiwi := g.MustUser(t, "kiwi", identity.Worker)
			c := MustDialWS(t, g, p)
			c.init(t, kiwi.Token)
			c.subscribeTasks(t, g, "board", "", 1)
			c.subscribeBalance(t, g, "balance", 1)
			g.Hub.ResyncTasks("the feed's queue was lost")
			m := c.mustRecv(t)
			var list []GQLError
			if m.ID != "board" || m.Type != p.errType || json.Unmarshal(m.Payload, &list) != nil || len(list) != 1 {
				t.Fatalf("want the board's RESYNC error, got %+v", m)
			}
			if code, _ := list[0].Extensions["code"].(string); code != "RESYNC" {
				t.Fatalf("code %q: %+v", code, list[0])
			}
			if g.Hub.TaskSubscribers() != 0 || g.Hub.Subscribers() != 1 {
				t.Fatalf("%d task and %d balance subscribers after the resync", g.Hub.TaskSubscribers(), g.Hub.Subscribers())
			}
			if _, errs := c.operation(t, "after", `{ me { id } }`); len(errs) > 0 {
				t.Fatalf("the socket no longer serves: %+v", errs)
			}
		})
	}
}

// TestLaggingFollowerIsResynced: R-LIVE-1 — a follower whose pushes are not taken is ended with
// RESYNC once MaxTaskLag pushes wait, without blocking the hub: a shuffle of any size queues at
// most that many pushes per follower.
func TestLaggingFollowerIsResynced(t *testing.T) {
	t.Parallel()
	h, logs := mustHub(t)
	ctx, ended := graph.WithStalledTaker(context.Background())
	h.SubscribeTasks(ctx, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range graph.MaxTaskLag + 10 {
			h.PublishTask(graph.TaskChangeForTest(uuid.NewString(), uuid.NewString()))
		}
	}()
	select {
	case <-done:
	case <-time.After(hubPushTimeout):
		t.Fatal("publishing blocked on a follower that takes nothing")
	}
	if h.TaskSubscribers() != 0 {
		t.Fatal("the lagging follower is still subscribed")
	}
	if err := ended(); err == nil || !strings.Contains(err.Error(), "fell too far behind") {
		t.Fatalf("ended with %v, want RESYNC", err)
	}
	if !strings.Contains(logs.String(), "ending a subscriber that cannot keep up") {
		t.Fatalf("not logged:\n%s", logs.String())
	}
}

// fixedTasks answers every lookup with a task of the given title: the feed's lookup, without a
// database, for measuring the hub and the sockets alone.
type fixedTasks struct{}

func (fixedTasks) GetMany(_ context.Context, ids []uuid.UUID) ([]tasks.Task, []error) {
	out := make([]tasks.Task, len(ids))
	for i, id := range ids {
		out[i] = tasks.Task{ID: id, Title: "Shuffled task", Description: strings.Repeat("d", 200), Status: tasks.Open, AssigneeID: id, CreatedAt: time.Now()}
	}
	return out, make([]error, len(ids))
}

// BenchmarkShuffleFollowers is a 100 000-task shuffle reaching 1 000 followers of every task,
// each on a WebSocket of its own that reads as fast as it can (R-LIVE-1): the gateway's peak
// heap over its heap before the shuffle, the pushes sent and the followers ended with RESYNC
// (docs/benchmarks.md). Followers = ATES_BENCH_FOLLOWERS, tasks = ATES_BENCH_TASKS.
func BenchmarkShuffleFollowers(b *testing.B) {
	followers, shuffled := envInt("ATES_BENCH_FOLLOWERS", 1000), envInt("ATES_BENCH_TASKS", 100_000)
	g := MustGateway(b)
	w := g.MustUser(b, "kiwi", identity.Worker)
	for b.Loop() {
		var pushes, resyncs atomic.Int64
		var wg sync.WaitGroup
		for range followers {
			c := MustDialWS(b, g, wsProtocols[0])
			c.init(b, w.Token)
			c.send(b, map[string]any{"id": "board", "type": "subscribe", "payload": map[string]any{
				"query": `subscription { taskChanged { kind task { title } } }`,
			}})
			wg.Go(func() {
				for {
					var m wsMessage
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err := wsjson.Read(ctx, c.conn, &m)
					cancel()
					if err != nil {
						return
					}
					switch m.Type {
					case "next":
						pushes.Add(1)
					case "error":
						resyncs.Add(1)
						return
					case "complete":
						return
					}
				}
			})
		}
		for g.Hub.TaskSubscribers() != followers {
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		peak := sampleHeap()
		batch := make([]event.Envelope, 0, 200)
		start := time.Now()
		for i := range shuffled {
			batch = append(batch, shuffleEvent(b, w.ID))
			if len(batch) == cap(batch) || i == shuffled-1 {
				if err := graph.PublishTaskChanges(context.Background(), g.Hub, fixedTasks{}, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		published := time.Since(start)
		for g.Hub.TaskSubscribers() > 0 && pushes.Load()+resyncs.Load()*int64(graph.MaxTaskLag) < int64(followers*shuffled) {
			time.Sleep(10 * time.Millisecond)
			if time.Since(start) > 5*time.Minute {
				break
			}
		}
		g.Hub.ResyncTasks("the measurement is over")
		wg.Wait()
		max := peak()
		b.ReportMetric(float64(max-before.HeapInuse)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(pushes.Load()), "pushes")
		b.ReportMetric(float64(resyncs.Load()), "resynced")
		b.ReportMetric(published.Seconds(), "publish-s")
	}
}

// sampleHeap samples the heap in use every 5 ms until the returned function is called, which
// returns the largest sample.
func sampleHeap() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		var m runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}

func shuffleEvent(tb testing.TB, assignee string) event.Envelope {
	tb.Helper()
	e, err := event.New(context.Background(), "tasks", contract.TaskAssigned, 1, time.Now(), contract.TaskAssignedV1{
		TaskID: uuid.NewString(), AssigneeID: assignee, PreviousAssigneeID: &assignee,
		Reason: contract.AssignedOnShuffle, AssignedAt: time.Now().UTC(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// failingTasks is a task lookup whose database does not answer.
type failingTasks struct{}

func (failingTasks) GetMany(_ context.Context, ids []uuid.UUID) ([]tasks.Task, []error) {
	errList := make([]error, len(ids))
	for i := range errList {
		errList[i] = errors.New("connection refused")
	}
	return make([]tasks.Task, len(ids)), errList
}

// TestBoardFollowersResyncWhenTasksCannotBeRead: R-REL-1 — a push whose task cannot be looked
// up would reach the follower as an error; the follower gets RESYNC instead and refetches once
// the database answers.
func TestBoardFollowersResyncWhenTasksCannotBeRead(t *testing.T) {
	t.Parallel()
	h, _ := mustHub(t)
	ctx, ended := graph.WithStalledTaker(context.Background())
	h.SubscribeTasks(ctx, nil)
	popug := uuid.NewString()
	if err := graph.PublishTaskChanges(context.Background(), h, failingTasks{}, []event.Envelope{shuffleEvent(t, popug)}); err != nil {
		t.Fatal(err)
	}
	if err := ended(); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("the follower ended with %v, want RESYNC", err)
	}
}
