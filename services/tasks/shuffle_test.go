package tasks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestShuffleAccess: R-TASK-4 — only an ADMIN or a MANAGER reshuffles; a refused shuffle
// changes nothing and publishes nothing.
func TestShuffleAccess(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		acc := h.MustPopug(t, identity.Accountant)
		for i := range 3 {
			h.MustCreate(t, w, fmt.Sprintf("task %d", i))
		}
		before, events := h.mustTasks(t), len(h.mustOutbox(t))
		for _, a := range []identity.Actor{w, acc, {AccountID: uuid.New(), Role: identity.Worker}, {}} {
			n, err := h.svc.Shuffle(context.Background(), a)
			mustCode(t, err, errs.Forbidden)
			if n != 0 {
				t.Fatalf("refused shuffle returned %d", n)
			}
		}
		if after := h.mustTasks(t); fmt.Sprint(after) != fmt.Sprint(before) || len(h.mustOutbox(t)) != events {
			t.Fatal("a refused shuffle changed tasks or stored events")
		}
		for _, role := range []identity.Role{identity.Admin, identity.Manager} {
			// The shuffler need not be in the replica, nor assignable.
			n, err := h.svc.Shuffle(context.Background(), identity.Actor{AccountID: uuid.New(), Role: role})
			if err != nil || n != 3 {
				t.Fatalf("%s shuffle = %d, %v; want 3", role, n, err)
			}
		}
	})
}

// TestShuffleReassignsEveryOpenTask: R-TASK-4, R-TASK-7 — every OPEN task gets exactly one
// task.assigned (reason shuffle, previousAssigneeId = the assignee before) and the new assignee
// is stored; DONE tasks are never touched; the count returned is the number reassigned.
func TestShuffleReassignsEveryOpenTask(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		popugs := []identity.Actor{h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Accountant)}
		manager := h.MustPopug(t, identity.Manager)
		var open []tasks.Task
		done := map[uuid.UUID]tasks.Task{}
		for i := range 40 {
			tk := h.MustCreate(t, manager, fmt.Sprintf("task %d", i))
			if i%4 == 0 {
				done[tk.ID] = h.MustComplete(t, tk)
			} else {
				open = append(open, tk)
			}
		}
		before := h.mustTasks(t)
		firstShuffleEvent := int64(0)
		if rows := h.mustOutbox(t); len(rows) > 0 {
			firstShuffleEvent = rows[len(rows)-1].ID + 1
		}
		notified := h.notified.Load()
		h.clock.Advance(time.Hour)

		n, err := h.svc.Shuffle(context.Background(), manager)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(open) {
			t.Fatalf("Shuffle = %d, want the %d open tasks", n, len(open))
		}
		if h.notified.Load() != notified+1 {
			t.Fatalf("relay woken %d times by the shuffle, want 1", h.notified.Load()-notified)
		}
		rows := h.mustOutbox(t)
		shuffled := assignments(t, rows, contract.AssignedOnShuffle)
		if len(shuffled) != len(open) {
			t.Fatalf("%d tasks got a shuffle assignment, want %d", len(shuffled), len(open))
		}
		after := h.mustTasks(t)
		perPopug := map[string]int{}
		for _, tk := range open {
			a := shuffled[tk.ID.String()]
			if len(a) != 1 {
				t.Fatalf("task %s has %d shuffle assignments, want 1", tk.ID, len(a))
			}
			prev := before[tk.ID].AssigneeID.String()
			if a[0].PreviousAssigneeID == nil || *a[0].PreviousAssigneeID != prev || a[0].OutboxID < firstShuffleEvent ||
				!a[0].AssignedAt.Equal(start.Add(time.Hour)) {
				t.Fatalf("task %s: assignment %+v, want previous %s at %s", tk.ID, a[0], prev, start.Add(time.Hour))
			}
			row := after[tk.ID]
			if row.Status != "OPEN" || row.AssigneeID.String() != a[0].AssigneeID {
				t.Fatalf("task %s stored %+v, event says %s", tk.ID, row, a[0].AssigneeID)
			}
			perPopug[a[0].AssigneeID]++
		}
		for _, p := range popugs {
			if perPopug[p.AccountID.String()] == 0 {
				t.Fatalf("popug %s got none of %d tasks: %v", p.AccountID, len(open), perPopug)
			}
		}
		for id, d := range done {
			if len(shuffled[id.String()]) != 0 || after[id] != before[id] || after[id].Status != "DONE" || after[id].AssigneeID != d.AssigneeID {
				t.Fatalf("DONE task %s was touched by the shuffle: %+v -> %+v (R-TASK-7)", id, before[id], after[id])
			}
		}
		// Nothing else was emitted.
		if extra := len(rows) - h.countOutbox(t, contract.TaskAssigned) - h.countOutbox(t, contract.TaskCreated) -
			h.countOutbox(t, contract.TaskCompleted) - h.countOutbox(t, contract.TaskUpdated); extra != 0 {
			t.Fatalf("%d unexpected events", extra)
		}
		if got := h.countOutbox(t, contract.TaskAssigned); got != 40+len(open) {
			t.Fatalf("%d task.assigned events, want 40 at creation + %d by the shuffle", got, len(open))
		}
	})
}

// TestShuffleSamePopugIsAnAssignment: R-TASK-4 — a draw landing on the same popug is still an
// assignment, published with previousAssigneeId equal to assigneeId.
func TestShuffleSamePopugIsAnAssignment(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		only := h.MustPopug(t, identity.Worker)
		admin := h.MustPopug(t, identity.Admin)
		for i := range 5 {
			h.MustCreate(t, only, fmt.Sprintf("task %d", i))
		}
		for round := 1; round <= 2; round++ {
			n, err := h.svc.Shuffle(context.Background(), admin)
			if err != nil || n != 5 {
				t.Fatalf("shuffle %d = %d, %v; want 5", round, n, err)
			}
			shuffled := assignments(t, h.mustOutbox(t), contract.AssignedOnShuffle)
			if len(shuffled) != 5 {
				t.Fatalf("shuffle %d: %d tasks reassigned", round, len(shuffled))
			}
			for id, a := range shuffled {
				if len(a) != round {
					t.Fatalf("task %s has %d shuffle assignments after %d shuffles", id, len(a), round)
				}
				last := a[len(a)-1]
				if last.AssigneeID != only.AccountID.String() || last.PreviousAssigneeID == nil || *last.PreviousAssigneeID != last.AssigneeID {
					t.Fatalf("task %s: %+v, want %s to %s", id, last, only.AccountID, only.AccountID)
				}
			}
		}
	})
}

// TestShuffleBatches: R-TASK-4 — the shuffle walks the open tasks in batches; every batch size
// (one task, an exact multiple, a remainder, more than there are) reassigns each open task once.
func TestShuffleBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		batch, open, done int
	}{
		{batch: 1, open: 4, done: 1},
		{batch: 3, open: 6, done: 0},  // exact multiple
		{batch: 3, open: 9, done: 3},  // exact multiple with DONE tasks between
		{batch: 3, open: 7, done: 2},  // remainder of 1
		{batch: 3, open: 2, done: 2},  // fewer than a batch
		{batch: 0, open: 7, done: 1},  // the default
		{batch: 5, open: 0, done: 4},  // nothing open
		{batch: 2, open: 1, done: 10}, // a lone open task after many done
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("batch %d, %d open, %d done", tt.batch, tt.open, tt.done), func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				t.Parallel()
				h := MustService(t, db, withBatch(tt.batch))
				h.MustPopug(t, identity.Worker)
				h.MustPopug(t, identity.Worker)
				admin := h.MustPopug(t, identity.Admin)
				open := map[string]bool{}
				// Interleave done and open tasks, so batches span both.
				for i := range tt.open + tt.done {
					tk := h.MustCreate(t, admin, fmt.Sprintf("task %d", i))
					if i%2 == 0 && i/2 < tt.done || i >= 2*tt.open {
						h.MustComplete(t, tk)
						continue
					}
					open[tk.ID.String()] = true
				}
				if len(open) != tt.open {
					t.Fatalf("set up %d open tasks, want %d", len(open), tt.open)
				}
				n, err := h.svc.Shuffle(context.Background(), admin)
				if err != nil || n != tt.open {
					t.Fatalf("Shuffle = %d, %v; want %d", n, err, tt.open)
				}
				shuffled := assignments(t, h.mustOutbox(t), contract.AssignedOnShuffle)
				if len(shuffled) != tt.open {
					t.Fatalf("%d tasks got a shuffle assignment, want %d", len(shuffled), tt.open)
				}
				for id, a := range shuffled {
					if !open[id] || len(a) != 1 {
						t.Fatalf("task %s (open %v) has %d shuffle assignments", id, open[id], len(a))
					}
				}
			})
		})
	}
}

// TestShuffleWithNothingToDo: R-TASK-4 — with no open task a shuffle reassigns 0, even when
// nobody is assignable; with open tasks and nobody assignable it is a CONFLICT that changes
// nothing.
func TestShuffleWithNothingToDo(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		manager := h.MustPopug(t, identity.Manager)
		if n, err := h.svc.Shuffle(context.Background(), manager); err != nil || n != 0 {
			t.Fatalf("shuffle of nothing, nobody assignable = %d, %v", n, err)
		}
		w := h.MustPopug(t, identity.Worker)
		if n, err := h.svc.Shuffle(context.Background(), manager); err != nil || n != 0 {
			t.Fatalf("shuffle of nothing = %d, %v", n, err)
		}
		h.MustComplete(t, h.MustCreate(t, w, "done"))
		if n, err := h.svc.Shuffle(context.Background(), manager); err != nil || n != 0 {
			t.Fatalf("shuffle of only DONE tasks = %d, %v", n, err)
		}
		if got := len(assignments(t, h.mustOutbox(t), contract.AssignedOnShuffle)); got != 0 {
			t.Fatalf("%d shuffle assignments without open tasks", got)
		}
		if h.notified.Load() != 2 { // the creation and the completion only
			t.Fatalf("relay woken %d times, want 2", h.notified.Load())
		}

		for i := range 3 {
			h.MustCreate(t, w, fmt.Sprintf("open %d", i))
		}
		h.MustUpdate(t, w.AccountID, identity.Worker, false) // nobody assignable any more
		before, events := h.mustTasks(t), len(h.mustOutbox(t))
		n, err := h.svc.Shuffle(context.Background(), manager)
		mustCode(t, err, errs.Conflict)
		if n != 0 {
			t.Fatalf("failed shuffle returned %d", n)
		}
		if after := h.mustTasks(t); fmt.Sprint(after) != fmt.Sprint(before) || len(h.mustOutbox(t)) != events {
			t.Fatal("a failed shuffle changed tasks or stored events")
		}
	})
}

// TestConcurrentShufflesSerialize: R-TASK-4 — two shuffles at once both reassign every open
// task; the second starts from the first's result, so each task's assignments chain.
func TestConcurrentShufflesSerialize(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withBatch(7))
		admin := h.MustPopug(t, identity.Admin)
		for range 4 {
			h.MustPopug(t, identity.Worker)
		}
		const count = 60
		for i := range count {
			h.MustCreate(t, admin, fmt.Sprintf("task %d", i))
		}
		var wg sync.WaitGroup
		results := make([]int, 3)
		errors := make([]error, 3)
		for i := range results {
			wg.Go(func() { results[i], errors[i] = h.svc.Shuffle(context.Background(), admin) })
		}
		wg.Wait()
		for i := range results {
			if errors[i] != nil || results[i] != count {
				t.Fatalf("shuffle %d = %d, %v; want %d", i, results[i], errors[i], count)
			}
		}
		rows := h.mustOutbox(t)
		created := assignments(t, rows, contract.AssignedOnCreate)
		shuffled := assignments(t, rows, contract.AssignedOnShuffle)
		stored := h.mustTasks(t)
		for id, a := range shuffled {
			if len(a) != len(results) {
				t.Fatalf("task %s has %d shuffle assignments, want %d", id, len(a), len(results))
			}
			prev := created[id][0].AssigneeID
			for _, x := range a {
				if x.PreviousAssigneeID == nil || *x.PreviousAssigneeID != prev {
					t.Fatalf("task %s: assignment %+v does not follow %s: shuffles interleaved", id, x, prev)
				}
				prev = x.AssigneeID
			}
			if stored[uuid.MustParse(id)].AssigneeID.String() != prev {
				t.Fatalf("task %s stored with %s, last assignment to %s", id, stored[uuid.MustParse(id)].AssigneeID, prev)
			}
		}
	})
}
