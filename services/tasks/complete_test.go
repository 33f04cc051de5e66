package tasks_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestComplete: R-TASK-7 — only the current assignee completes an OPEN task: an unknown task is
// NOT_FOUND, someone else's FORBIDDEN (admins included), a DONE one a CONFLICT. A completion
// stores DONE and completedAt with task.completed and task.updated, in one transaction.
func TestComplete(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		other := h.MustPopug(t, identity.Worker)
		h.MustUpdate(t, other.AccountID, identity.Worker, false) // every task goes to w
		admin := h.MustPopug(t, identity.Admin)
		jira := "UBERPOP-7"
		tk, err := h.svc.Create(context.Background(), admin, tasks.NewTask{Title: "Fix", JiraID: &jira, Description: "d"})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		events := len(h.mustOutbox(t))

		_, err = h.svc.Complete(ctx, w, uuid.New())
		mustCode(t, err, errs.NotFound)
		_, err = h.svc.Complete(ctx, identity.Actor{}, tk.ID)
		mustCode(t, err, errs.Unauthenticated)
		for _, a := range []identity.Actor{other, admin, {AccountID: other.AccountID, Role: identity.Manager}} {
			_, err = h.svc.Complete(ctx, a, tk.ID)
			mustCode(t, err, errs.Forbidden)
		}
		if got := h.mustTasks(t)[tk.ID]; got.Status != "OPEN" || got.CompletedAt != "" || len(h.mustOutbox(t)) != events {
			t.Fatalf("refused completions changed the task (%+v) or stored events", got)
		}
		notified := h.notified.Load()

		h.clock.Advance(2 * time.Hour)
		now := start.Add(2 * time.Hour)
		done, err := h.svc.Complete(ctx, w, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.ID != tk.ID || done.Status != tasks.Done || done.CompletedAt == nil || !done.CompletedAt.Equal(now) ||
			done.AssigneeID != w.AccountID || done.Title != "Fix" || *done.JiraID != jira || !done.CreatedAt.Equal(start) {
			t.Fatalf("completed = %+v", done)
		}
		read, err := h.svc.Get(ctx, other, tk.ID)
		if err != nil || read.Status != tasks.Done || read.CompletedAt == nil || !read.CompletedAt.Equal(now) || read.AssigneeID != w.AccountID {
			t.Fatalf("stored = %+v, %v", read, err)
		}
		if h.notified.Load() != notified+1 {
			t.Fatal("the relay was not woken after the completion")
		}
		rows := h.mustOutbox(t)[events:]
		if len(rows) != 2 || rows[0].Name != contract.TaskCompleted || rows[1].Name != contract.TaskUpdated {
			t.Fatalf("events of the completion = %+v, want task.completed and task.updated", rows)
		}
		var c contract.TaskCompletedV1
		if err := rows[0].Envelope.DecodeData(&c); err != nil {
			t.Fatal(err)
		}
		if c.TaskID != tk.ID.String() || c.AssigneeID != w.AccountID.String() || !c.CompletedAt.Equal(now) || rows[0].Key != tk.ID.String() {
			t.Fatalf("task.completed = %+v", c)
		}
		var u contract.TaskUpdatedV1
		if err := rows[1].Envelope.DecodeData(&u); err != nil {
			t.Fatal(err)
		}
		if u.TaskID != tk.ID.String() || u.Status != contract.TaskDone || u.CompletedAt == nil || !u.CompletedAt.Equal(now) ||
			u.Title != "Fix" || u.JiraID == nil || *u.JiraID != jira || u.Description != "d" || !u.CreatedAt.Equal(start) || rows[1].Key != tk.ID.String() {
			t.Fatalf("task.updated = %+v", u)
		}

		// Completing again is a conflict, for the assignee and anyone else.
		for _, a := range []identity.Actor{w, other} {
			_, err = h.svc.Complete(ctx, a, tk.ID)
			mustCode(t, err, errs.Conflict)
		}
		if len(h.mustOutbox(t)) != events+2 {
			t.Fatal("a refused second completion stored events")
		}
	})
}

// TestCompleteAfterShuffle: R-TASK-5, R-TASK-7 — after a shuffle only the new assignee can
// complete the task.
func TestCompleteAfterShuffle(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		a, b := h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Worker)
		manager := h.MustPopug(t, identity.Manager)
		h.MustUpdate(t, b.AccountID, identity.Worker, false)
		tk := h.MustCreate(t, manager, "Fix")
		if tk.AssigneeID != a.AccountID {
			t.Fatalf("assigned to %s, want the only assignable %s", tk.AssigneeID, a.AccountID)
		}
		h.MustUpdate(t, b.AccountID, identity.Worker, true)
		h.MustUpdate(t, a.AccountID, identity.Worker, false)
		if n, err := h.svc.Shuffle(context.Background(), manager); err != nil || n != 1 {
			t.Fatalf("Shuffle = %d, %v", n, err)
		}
		_, err := h.svc.Complete(context.Background(), a, tk.ID)
		mustCode(t, err, errs.Forbidden)
		if _, err := h.svc.Complete(context.Background(), b, tk.ID); err != nil {
			t.Fatalf("the new assignee cannot complete: %v", err)
		}
	})
}

// TestCompleteReachesItsTaskByKey: R-TASK-7 — a completion reads and writes its task through a
// unique key, not through the popug's other tasks: with 2 000 open tasks of one popug and no
// statistics yet (a new table; autovacuum has not analysed it), every statement Complete runs
// on tasks is planned on the primary key or the public id, never on the (assignee_id, status)
// index, never a scan — on PostgreSQL also as a generic plan, as the prepared statements run.
func TestCompleteReachesItsTaskByKey(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		rec := &statements{}
		h := MustService(t, db, withStatements(rec), withoutPool()) // every statement through Ent's driver
		w := h.MustPopug(t, identity.Worker)
		const open = 2000
		for range open / 1000 {
			bulk := make([]*tasksdb.TaskCreate, 1000)
			for i := range bulk {
				bulk[i] = h.client.Task.Create().SetPublicID(uuid.New()).SetTitle("Task").SetDescription("d").
					SetAssigneeID(w.AccountID).SetCreatedAt(start)
			}
			if err := h.client.Task.CreateBulk(bulk...).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		tk := h.MustCreate(t, w, "The one")
		rec.Take()
		h.MustComplete(t, tk)
		var planned int
		for _, st := range rec.Take() {
			q := strings.TrimSpace(st.Query)
			if !strings.Contains(q, "tasks") || !(strings.HasPrefix(q, "SELECT") || strings.HasPrefix(q, "UPDATE") || strings.HasPrefix(q, "WITH")) {
				continue
			}
			planned++
			for _, generic := range []bool{false, true} {
				if generic && db.Dialect != "postgres" {
					continue
				}
				plan := storagetest.Plan(t, db, q, st.Args, generic)
				for _, bad := range []string{"task_assignee_id_status", "Seq Scan", "SCAN tasks"} {
					if strings.Contains(plan, bad) {
						t.Errorf("Complete's statement (generic plan: %v)\n  %s\nis planned with %q:\n%s", generic, q, bad, plan)
					}
				}
			}
		}
		if planned < 2 {
			t.Fatalf("Complete ran %d statements that read or write tasks, want its read and its update", planned)
		}
	})
}
