package main

import (
	"encoding/json"
	"testing"
	"time"
)

// boardPush is one taskChanged push as a client reads it.
type boardPush struct {
	Kind string
	Task struct {
		ID       string
		Status   string
		Assignee struct{ ID string }
	}
	PreviousAssignee *struct{ ID string }
}

const boardQuery = `subscription($a: ID) { taskChanged(assigneeId: $a) { kind task { id status assignee { id } } previousAssignee { id } } }`

// nextBoardPush returns the socket's next taskChanged push.
func nextBoardPush(tb testing.TB, name string, c *wsConn) boardPush {
	tb.Helper()
	m, err := c.next(15 * time.Second)
	if err != nil {
		tb.Fatalf("%s: waiting for a board push: %v", name, err)
	}
	var r struct {
		Data   struct{ TaskChanged boardPush }
		Errors []json.RawMessage
	}
	if m.Type != c.proto.Next || json.Unmarshal(m.Payload, &r) != nil || len(r.Errors) > 0 {
		tb.Fatalf("%s: want a push, got %+v", name, m)
	}
	return r.Data.TaskChanged
}

// TestRunTaskChangedAcrossGateways runs two gateways and a worker on PostgreSQL and RabbitMQ
// (R-OPS-2, R-LIVE-1): a board follower gets every creation, reassignment and completion
// whichever gateway holds its socket and whichever gateway the change went through.
func TestRunTaskChangedAcrossGateways(t *testing.T) {
	env := mustProduction(t)
	_, baseA := MustStart(t, env.Environ, "gateway")
	_, baseB := MustStart(t, env.Environ, "gateway")
	MustStart(t, env.Environ, "worker")
	bossToken, _ := mustLogin(t, baseA, "boss", "boss-beak-print")
	mgr := mustCreatePopug(t, baseA, bossToken, "max", "MANAGER")
	kiwi := mustSignUp(t, baseB, "kiwi") // the only assignable popug

	everyTask := mustDialWS(t, baseA, transportWS, mgr.Token)
	everyTask.subscribe(t, "board", boardQuery, nil)
	kiwisTasks := mustDialWS(t, baseB, legacyWS, kiwi.Token)
	kiwisTasks.subscribe(t, "board", boardQuery, map[string]any{"a": kiwi.ID})
	// The subscriptions reach their hubs asynchronously: create tasks until both have a push.
	n := 0
	deadline := time.Now().Add(time.Minute)
	for _, c := range []*wsConn{everyTask, kiwisTasks} {
		for {
			if time.Now().After(deadline) {
				t.Fatal("no board push within a minute")
			}
			n++
			mustCreateTask(t, baseA, mgr.Token, n)
			if _, err := c.next(2 * time.Second); err == nil {
				break
			}
		}
	}
	for _, c := range []*wsConn{everyTask, kiwisTasks} {
		for {
			if _, err := c.next(time.Second); err != nil {
				break // quiet: every earlier push taken
			}
		}
	}

	task := mustCreateTask(t, baseB, kiwi.Token, 1000) // through B
	for name, c := range map[string]*wsConn{"every task @A": everyTask, "kiwi's @B": kiwisTasks} {
		if p := nextBoardPush(t, name, c); p.Kind != "CREATED" || p.Task.ID != task.ID || p.Task.Assignee.ID != kiwi.ID {
			t.Fatalf("%s: %+v, want task %s created for kiwi", name, p, task.ID)
		}
	}
	mustComplete(t, baseA, kiwi.Token, task.ID) // through A
	for name, c := range map[string]*wsConn{"every task @A": everyTask, "kiwi's @B": kiwisTasks} {
		if p := nextBoardPush(t, name, c); p.Kind != "COMPLETED" || p.Task.ID != task.ID || p.Task.Status != "DONE" {
			t.Fatalf("%s: %+v, want task %s completed", name, p, task.ID)
		}
	}
	// A shuffle reassigns every open task to kiwi again: each reassignment reaches both.
	var shuffled struct{ ShuffleTasks struct{ Reassigned int } }
	mustDo(t, baseB, mgr.Token, `mutation { shuffleTasks { reassigned } }`, nil, &shuffled)
	if shuffled.ShuffleTasks.Reassigned != n {
		t.Fatalf("reassigned %d, want the %d open tasks", shuffled.ShuffleTasks.Reassigned, n)
	}
	for name, c := range map[string]*wsConn{"every task @A": everyTask, "kiwi's @B": kiwisTasks} {
		for range n {
			p := nextBoardPush(t, name, c)
			if p.Kind != "REASSIGNED" || p.PreviousAssignee == nil || p.PreviousAssignee.ID != kiwi.ID || p.Task.Assignee.ID != kiwi.ID {
				t.Fatalf("%s: %+v, want a reassignment from kiwi to kiwi", name, p)
			}
		}
	}
}
