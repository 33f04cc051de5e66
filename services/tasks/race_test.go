package tasks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestCompletionRacingShuffle: R-TASK-8 — a shuffle and every assignee's completion of their
// task run at once. Per task exactly one story holds:
//
//   - the completion won: the task is DONE with the popug who completed it, who was its assignee
//     at that moment — it has no shuffle assignment at all (the shuffle skipped it), or one that
//     landed on the same popug and was committed before the completion (outbox id order);
//   - the shuffle won: the completion failed FORBIDDEN, nothing of it was stored, and the task is
//     OPEN with the assignee of its one shuffle assignment, who is not the popug who tried.
//
// Never both: no task has a task.completed event by a popug the shuffle had already moved it
// away from, nor a shuffle assignment after its completion.
func TestCompletionRacingShuffle(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		// Small batches make the shuffle many statements long, so completions land between them.
		h := MustService(t, db, withBatch(4))
		// The completions queue for a few connections rather than take a server's worth of them
		// (PostgreSQL allows 100 clients, shared by every test running).
		db.SQL.SetMaxOpenConns(8)
		manager := h.MustPopug(t, identity.Manager)
		for range 3 {
			h.MustPopug(t, identity.Worker)
		}
		const count = 48
		created := make([]tasks.Task, count)
		for i := range created {
			created[i] = h.MustCreate(t, manager, fmt.Sprintf("task %d", i))
		}
		h.clock.Advance(time.Minute)

		ctx := context.Background()
		var (
			wg          sync.WaitGroup
			ready       = make(chan struct{})
			shuffled    int
			shuffleErr  error
			completeErr = make([]error, count)
		)
		wg.Go(func() {
			<-ready
			shuffled, shuffleErr = h.svc.Shuffle(ctx, manager)
		})
		for i, tk := range created {
			wg.Go(func() {
				<-ready
				// Spread the completions over the shuffle's run, so that they land before, between
				// and after its batches (the outcome is asserted, never the timing).
				time.Sleep(time.Duration(i%12) * time.Millisecond)
				_, completeErr[i] = h.svc.Complete(ctx, identity.Actor{AccountID: tk.AssigneeID, Role: identity.Worker}, tk.ID)
			})
		}
		close(ready)
		wg.Wait()
		if shuffleErr != nil {
			t.Fatalf("Shuffle: %v", shuffleErr)
		}

		rows := h.mustOutbox(t)
		shuffles := assignments(t, rows, contract.AssignedOnShuffle)
		completions := map[string][]outboxRow{}
		for _, r := range rows {
			if r.Name == contract.TaskCompleted {
				completions[r.Key] = append(completions[r.Key], r)
			}
		}
		stored := h.mustTasks(t)
		var won, wonAfterSameDraw, lost, shuffleEvents int
		for i, tk := range created {
			id, who := tk.ID.String(), tk.AssigneeID.String()
			row, s, c := stored[tk.ID], shuffles[id], completions[id]
			shuffleEvents += len(s)
			if len(s) > 1 {
				t.Fatalf("task %s has %d shuffle assignments from one shuffle", id, len(s))
			}
			if completeErr[i] == nil {
				// The completion won.
				if row.Status != "DONE" || row.AssigneeID != tk.AssigneeID || row.CompletedAt == "" {
					t.Fatalf("task %s completed by %s is stored %+v", id, who, row)
				}
				if len(c) != 1 {
					t.Fatalf("task %s completed once has %d task.completed events", id, len(c))
				}
				var d contract.TaskCompletedV1
				if err := c[0].Envelope.DecodeData(&d); err != nil || d.AssigneeID != who {
					t.Fatalf("task %s: task.completed %+v (%v), want by %s", id, d, err, who)
				}
				if len(s) == 1 {
					// The shuffle reached it first and drew the same popug: still theirs.
					if s[0].OutboxID > c[0].ID || s[0].AssigneeID != who || s[0].PreviousAssigneeID == nil || *s[0].PreviousAssigneeID != who {
						t.Fatalf("task %s completed by %s (event %d) also has shuffle assignment %+v: both happened (R-TASK-8)", id, who, c[0].ID, s[0])
					}
					wonAfterSameDraw++
				} else {
					won++
				}
				continue
			}
			// The shuffle won: the old assignee's completion failed and left nothing.
			if code := errs.CodeOf(completeErr[i]); code != errs.Forbidden {
				t.Fatalf("task %s: completion failed with %v (code %s), want FORBIDDEN", id, completeErr[i], code)
			}
			if len(c) != 0 || row.Status != "OPEN" || row.CompletedAt != "" {
				t.Fatalf("task %s: the completion failed, yet it is stored %+v with %d task.completed events (R-TASK-8)", id, row, len(c))
			}
			if len(s) != 1 || s[0].PreviousAssigneeID == nil || *s[0].PreviousAssigneeID != who ||
				s[0].AssigneeID != row.AssigneeID.String() || s[0].AssigneeID == who {
				t.Fatalf("task %s: the completion by %s failed; shuffle assignments %+v, stored %+v", id, who, s, row)
			}
			lost++
		}
		if shuffled != shuffleEvents || shuffled != lost+wonAfterSameDraw {
			t.Fatalf("Shuffle returned %d; %d shuffle assignments; %d completions lost, %d won after a same-popug draw",
				shuffled, shuffleEvents, lost, wonAfterSameDraw)
		}
		if got := len(shuffles); got != shuffleEvents {
			t.Fatalf("shuffle assignments for %d tasks, %d events", got, shuffleEvents)
		}
		// Every task left open belongs to its new assignee, who can complete it.
		for _, tk := range created {
			if row := stored[tk.ID]; row.Status == "OPEN" {
				if _, err := h.svc.Complete(ctx, identity.Actor{AccountID: row.AssigneeID, Role: identity.Worker}, tk.ID); err != nil {
					t.Fatalf("the new assignee of %s cannot complete it: %v", tk.ID, err)
				}
			}
		}
		t.Logf("%s: %d completions before the shuffle reached the task, %d after a same-popug draw, %d lost to the shuffle",
			db.Dialect, won, wonAfterSameDraw, lost)
	})
}
