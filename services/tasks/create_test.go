package tasks_test

import (
	"context"
	"fmt"
	"strings"
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

// TestCreateDrawsAssignablePopugsUniformly: R-TASK-2, R-TASK-3 — a task goes to an active
// account that is neither ADMIN nor MANAGER, and every assignable popug is drawn about equally
// often.
func TestCreateDrawsAssignablePopugsUniformly(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		admin := h.MustPopug(t, identity.Admin)
		h.MustPopug(t, identity.Manager)
		gone := h.MustPopug(t, identity.Worker)
		h.MustUpdate(t, gone.AccountID, identity.Worker, false)
		goneAccountant := h.MustPopug(t, identity.Accountant)
		h.MustUpdate(t, goneAccountant.AccountID, identity.Accountant, false)
		assignable := map[uuid.UUID]int{}
		for _, r := range []identity.Role{identity.Worker, identity.Worker, identity.Accountant, identity.Worker} {
			assignable[h.MustPopug(t, r).AccountID] = 0
		}

		const draws = 400
		for i := range draws {
			task := h.MustCreate(t, admin, fmt.Sprintf("Task %d", i))
			if _, ok := assignable[task.AssigneeID]; !ok {
				t.Fatalf("task %d went to %s, who is not assignable (R-TASK-3)", i, task.AssigneeID)
			}
			assignable[task.AssigneeID]++
		}
		// Chi-square goodness of fit against the uniform distribution, 3 degrees of freedom:
		// 16.27 is the 0.999 quantile. The seed is fixed, so this is a sanity check of the
		// mapping from draws to popugs (an off-by-one starves someone), not of the generator.
		expected := float64(draws) / float64(len(assignable))
		chi2 := 0.0
		for id, n := range assignable {
			if n == 0 {
				t.Fatalf("popug %s was never drawn in %d creations", id, draws)
			}
			d := float64(n) - expected
			chi2 += d * d / expected
		}
		if chi2 > 16.27 {
			t.Fatalf("draws %v are not uniform: chi-square %.2f > 16.27", assignable, chi2)
		}
		t.Logf("draws per popug %v, chi-square %.2f", assignable, chi2)

		// The stored tasks agree with what Create returned.
		stored := map[uuid.UUID]int{}
		for _, r := range h.mustTasks(t) {
			stored[r.AssigneeID]++
		}
		for id, n := range assignable {
			if stored[id] != n {
				t.Fatalf("stored assignees %v, returned %v", stored, assignable)
			}
		}
	})
}

// TestCreateWithNobodyAssignable: R-TASK-2 — with no assignable popug creation fails with a
// clear CONFLICT and nothing is stored: no task, no event.
func TestCreateWithNobodyAssignable(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		creator := identity.Actor{AccountID: uuid.New(), Role: identity.Worker} // not yet in the replica
		check := func(stage string) {
			t.Helper()
			_, err := h.svc.Create(context.Background(), creator, tasks.NewTask{Title: "Fix", Description: "d"})
			e := mustCode(t, err, errs.Conflict)
			if !strings.Contains(e.Message, "no popug") {
				t.Fatalf("%s: message %q does not say why", stage, e.Message)
			}
			if n, _ := h.client.Task.Query().Count(context.Background()); n != 0 {
				t.Fatalf("%s: %d tasks stored", stage, n)
			}
			if rows := h.mustOutbox(t); len(rows) != 0 {
				t.Fatalf("%s: %d events stored", stage, len(rows))
			}
		}
		check("empty replica")
		h.MustPopug(t, identity.Admin)
		h.MustPopug(t, identity.Manager)
		w := h.MustPopug(t, identity.Worker)
		h.MustUpdate(t, w.AccountID, identity.Worker, false)
		a := h.MustPopug(t, identity.Accountant)
		h.MustUpdate(t, a.AccountID, identity.Accountant, false)
		check("only admins, managers and deactivated popugs")
		if h.notified.Load() != 0 {
			t.Fatalf("the relay was woken %d times for nothing", h.notified.Load())
		}
	})
}

// TestCreateStoresTaskAndEvents: R-TASK-2, R-EVT-3, R-EVT-4 — the task and its task.created v2
// and task.assigned (reason created) events commit together, with the task's data.
func TestCreateStoresTaskAndEvents(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		creator := h.MustPopug(t, identity.Manager) // not assignable, may create
		jira := "UBERPOP-42"
		h.clock.Advance(90 * time.Second)
		got, err := h.svc.Create(context.Background(), creator, tasks.NewTask{
			Title: "Fix the beak scanner", JiraID: &jira, Description: "It scans claws instead of beaks.",
		})
		if err != nil {
			t.Fatal(err)
		}
		now := start.Add(90 * time.Second)
		if got.ID == uuid.Nil || got.Title != "Fix the beak scanner" || got.JiraID == nil || *got.JiraID != jira ||
			got.Description != "It scans claws instead of beaks." || got.Status != tasks.Open || got.AssigneeID != w.AccountID ||
			!got.CreatedAt.Equal(now) || got.CompletedAt != nil {
			t.Fatalf("created %+v", got)
		}
		read, err := h.svc.Get(context.Background(), w, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if read.ID != got.ID || read.Title != got.Title || *read.JiraID != jira || read.Description != got.Description ||
			read.Status != tasks.Open || read.AssigneeID != w.AccountID || !read.CreatedAt.Equal(now) || read.CreatedAt.Location() != time.UTC {
			t.Fatalf("stored %+v, created %+v", read, got)
		}
		if h.notified.Load() != 1 {
			t.Fatalf("relay woken %d times, want 1", h.notified.Load())
		}

		rows := h.mustOutbox(t)
		if len(rows) != 2 || rows[0].Name != contract.TaskCreated || rows[0].Version != 2 ||
			rows[1].Name != contract.TaskAssigned || rows[1].Version != 1 {
			t.Fatalf("outbox = %+v, want task.created v2 then task.assigned v1", rows)
		}
		for _, r := range rows {
			if r.Key != got.ID.String() || !r.Envelope.Time.Equal(now) {
				t.Fatalf("event %s keyed %s at %s, want the task %s at %s", r.Name, r.Key, r.Envelope.Time, got.ID, now)
			}
		}
		var c contract.TaskCreatedV2
		if err := rows[0].Envelope.DecodeData(&c); err != nil {
			t.Fatal(err)
		}
		if c.TaskID != got.ID.String() || c.Title != got.Title || c.JiraID == nil || *c.JiraID != jira ||
			c.Description != got.Description || !c.CreatedAt.Equal(now) {
			t.Fatalf("task.created = %+v", c)
		}
		if decoded, err := contract.DecodeTaskCreated(rows[0].Envelope); err != nil || decoded.Title != got.Title {
			t.Fatalf("a consumer reads task.created as %+v, %v", decoded, err)
		}
		a := assignments(t, rows, "")[got.ID.String()]
		if len(a) != 1 || a[0].AssigneeID != w.AccountID.String() || a[0].PreviousAssigneeID != nil ||
			a[0].Reason != contract.AssignedOnCreate || !a[0].AssignedAt.Equal(now) {
			t.Fatalf("task.assigned = %+v", a)
		}

		// An empty jiraId means none; it is stored as null and published as null.
		noJira := ""
		got2, err := h.svc.Create(context.Background(), creator, tasks.NewTask{Title: "Oil the perch", JiraID: &noJira, Description: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if got2.JiraID != nil {
			t.Fatalf("jiraId = %q, want none", *got2.JiraID)
		}
		rows = h.mustOutbox(t)
		if len(rows) != 4 || !strings.Contains(string(rows[2].Envelope.Data), `"jiraId":null`) {
			t.Fatalf("task.created without a Jira id: %s", rows[2].Envelope.Data)
		}
	})
}

// TestCreateRefusals: R-TASK-2 — invalid input and anonymous callers store nothing.
func TestCreateRefusals(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		bad := "uberpop-1"
		for _, tt := range []struct {
			n     tasks.NewTask
			field string
		}{
			{tasks.NewTask{Title: "", Description: "d"}, "title"},
			{tasks.NewTask{Title: "[UBERPOP-1] Fix", Description: "d"}, "title"},
			{tasks.NewTask{Title: strings.Repeat("x", 201), Description: "d"}, "title"},
			{tasks.NewTask{Title: "Fix", JiraID: &bad, Description: "d"}, "jiraId"},
			{tasks.NewTask{Title: "Fix", Description: strings.Repeat("d", 10001)}, "description"},
		} {
			_, err := h.svc.Create(context.Background(), w, tt.n)
			if e := mustCode(t, err, errs.Invalid); e.Field != tt.field {
				t.Fatalf("field = %q, want %q", e.Field, tt.field)
			}
		}
		_, err := h.svc.Create(context.Background(), identity.Actor{}, tasks.NewTask{Title: "Fix", Description: "d"})
		mustCode(t, err, errs.Unauthenticated)
		if n, _ := h.client.Task.Query().Count(context.Background()); n != 0 {
			t.Fatalf("%d tasks stored", n)
		}
		if rows := h.mustOutbox(t); len(rows) != 0 {
			t.Fatalf("%d events stored", len(rows))
		}
	})
}

// TestCreateLongMultibyteText: R-TASK-2 counts characters — a 200-character title and a
// 10 000-character description of multi-byte characters are valid and stored intact.
func TestCreateLongMultibyteText(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		n := tasks.NewTask{Title: strings.Repeat("ü", 199) + "🦜", Description: strings.Repeat("ж", 9999) + "🦜"}
		got, err := h.svc.Create(context.Background(), w, n)
		if err != nil {
			t.Fatalf("creating a task with a 200-character multi-byte title: %v", err)
		}
		read, err := h.svc.Get(context.Background(), w, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if read.Title != n.Title || read.Description != n.Description {
			t.Fatalf("stored title/description differ from what was created")
		}
	})
}

// TestCreateFollowsTheReplica: R-TASK-3, R-AUTH-5 — once a role change or a deactivation is
// applied, the popug is no longer drawn; a change back makes them assignable again.
func TestCreateFollowsTheReplica(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		a, b, c := h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Accountant)
		draw := func(n int) map[uuid.UUID]int {
			t.Helper()
			got := map[uuid.UUID]int{}
			for i := range n {
				got[h.MustCreate(t, a, fmt.Sprintf("task %d", i)).AssigneeID]++
			}
			return got
		}
		if got := draw(40); len(got) != 3 {
			t.Fatalf("before any change, 40 draws reached %d of 3 popugs: %v", len(got), got)
		}
		h.MustUpdate(t, a.AccountID, identity.Manager, true) // promoted
		h.MustUpdate(t, b.AccountID, identity.Worker, false) // deactivated
		if got := draw(30); len(got) != 1 || got[c.AccountID] != 30 {
			t.Fatalf("after promoting a and deactivating b, draws = %v, want all 30 to c", got)
		}
		h.MustUpdate(t, c.AccountID, identity.Admin, true)
		_, err := h.svc.Create(context.Background(), a, tasks.NewTask{Title: "Fix", Description: "d"})
		mustCode(t, err, errs.Conflict)
		h.MustUpdate(t, b.AccountID, identity.Worker, true) // reactivated
		if got := draw(10); got[b.AccountID] != 10 {
			t.Fatalf("after reactivating b, draws = %v, want all 10 to b", got)
		}
	})
}

// TestTimesRoundTrip: what Create and Complete return, what is stored and what the events carry
// are the same instants, even when the clock has a precision (nanoseconds) the database lacks
// (PostgreSQL keeps microseconds).
func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		w := h.MustPopug(t, identity.Worker)
		h.clock.Advance(123456789 * time.Nanosecond)
		created := h.MustCreate(t, w, "Fix")
		h.clock.Advance(time.Minute + 987654321*time.Nanosecond)
		done := h.MustComplete(t, created)
		read, err := h.svc.Get(context.Background(), w, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !read.CreatedAt.Equal(created.CreatedAt) || !read.CreatedAt.Equal(done.CreatedAt) {
			t.Fatalf("createdAt: returned %s, stored %s", created.CreatedAt.Format(time.RFC3339Nano), read.CreatedAt.Format(time.RFC3339Nano))
		}
		if read.CompletedAt == nil || !read.CompletedAt.Equal(*done.CompletedAt) {
			t.Fatalf("completedAt: returned %v, stored %v", done.CompletedAt, read.CompletedAt)
		}
		for _, r := range h.mustOutbox(t) {
			var d struct {
				CreatedAt   *time.Time `json:"createdAt"`
				CompletedAt *time.Time `json:"completedAt"`
				AssignedAt  *time.Time `json:"assignedAt"`
			}
			if err := r.Envelope.DecodeData(&d); err != nil {
				t.Fatal(err)
			}
			for name, at := range map[string]*time.Time{"createdAt": d.CreatedAt, "assignedAt": d.AssignedAt} {
				if at != nil && !at.Equal(read.CreatedAt) {
					t.Fatalf("%s %s = %s, stored createdAt %s", r.Name, name, at.Format(time.RFC3339Nano), read.CreatedAt.Format(time.RFC3339Nano))
				}
			}
			if d.CompletedAt != nil && !d.CompletedAt.Equal(*read.CompletedAt) {
				t.Fatalf("%s completedAt = %s, stored %s", r.Name, d.CompletedAt.Format(time.RFC3339Nano), read.CompletedAt.Format(time.RFC3339Nano))
			}
		}
	})
}
