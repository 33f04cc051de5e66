package tasks_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// counted is a (assignee, status) → number of tasks table.
type counted map[string]int64

func (c counted) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s=%d ", k, c[k])
	}
	return s
}

// mustCounted reads a query of (assignee_id, status, n) rows, leaving out zeros.
func (h *harness) mustCounted(tb testing.TB, query string) counted {
	tb.Helper()
	rows, err := h.db.SQL.Query(query)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	out := counted{}
	for rows.Next() {
		var (
			assignee, status string
			n                int64
		)
		if err := rows.Scan(&assignee, &status, &n); err != nil {
			tb.Fatal(err)
		}
		if n != 0 {
			out[assignee+"/"+status] = n
		}
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// mustCountsTrue fails the test unless every counter equals its tasks counted.
func (h *harness) mustCountsTrue(tb testing.TB, step string) {
	tb.Helper()
	truth := h.mustCounted(tb, "SELECT assignee_id, status, count(*) FROM tasks GROUP BY assignee_id, status")
	kept := h.mustCounted(tb, "SELECT assignee_id, status, n FROM task_counts")
	if truth.String() != kept.String() {
		tb.Fatalf("after %s the counters are\n%v\nthe tasks counted\n%v", step, kept, truth)
	}
}

// mustTotal is the dashboard's total for a filter (R-TASK-1).
func (h *harness) mustTotal(tb testing.TB, f tasks.Filter) int {
	tb.Helper()
	p, err := h.svc.List(context.Background(), identity.Actor{AccountID: uuid.New(), Role: identity.Worker}, f, page.Request{First: 0})
	if err != nil {
		tb.Fatal(err)
	}
	return p.TotalCount
}

// TestCountersFollowEveryChange: R-TASK-1, R-TASK-6 — the dashboard's totals come from
// counters; a property test drives random sequences of creations (R-TASK-2), shuffles
// (R-TASK-4), completions by the assignee and by others (R-TASK-7), and account deactivations,
// reactivations and role changes (R-TASK-3, R-AUTH-5: they change who is assignable, never a
// task, R-TASK-5), with shuffle batches of 3 so a shuffle is many statements; after every step
// each counter equals its tasks counted, and the totals List reports equal the tasks it would
// list.
func TestCountersFollowEveryChange(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		for _, seed := range []uint64{1, 2} {
			opts := []option{withBatch(3), withSeed(seed, seed+100)}
			if seed == 2 {
				// Without the pool: the shuffle's Ent transaction instead of COPY on its own.
				opts = append(opts, withoutPool())
			}
			h := MustService(t, db, opts...)
			steps := rand.New(rand.NewPCG(seed, 7))
			ctx := context.Background()
			manager := h.MustPopug(t, identity.Manager)
			type popug struct {
				actor  identity.Actor
				role   identity.Role
				active bool
			}
			var popugs []*popug
			for range 4 {
				popugs = append(popugs, &popug{h.MustPopug(t, identity.Worker), identity.Worker, true})
			}
			roles := []identity.Role{identity.Worker, identity.Accountant, identity.Admin, identity.Manager}
			var created []tasks.Task
			for step := range 120 {
				var what string
				switch k := steps.IntN(20); {
				case k < 8:
					what = "a creation"
					tk, err := h.svc.Create(ctx, manager, tasks.NewTask{Title: fmt.Sprintf("task %d", step), Description: "d"})
					if err != nil && errs.CodeOf(err) != errs.Conflict { // nobody assignable
						t.Fatalf("step %d: Create: %v", step, err)
					}
					if err == nil {
						created = append(created, tk)
					}
				case k < 13:
					if len(created) == 0 {
						continue
					}
					what = "a completion"
					tk := created[steps.IntN(len(created))]
					row := h.mustTasks(t)[tk.ID]
					by := row.AssigneeID
					if steps.IntN(4) == 0 {
						by = popugs[steps.IntN(len(popugs))].actor.AccountID // maybe someone else's task
					}
					_, err := h.svc.Complete(ctx, identity.Actor{AccountID: by, Role: identity.Worker}, tk.ID)
					if c := errs.CodeOf(err); err != nil && c != errs.Forbidden && c != errs.Conflict {
						t.Fatalf("step %d: Complete: %v", step, err)
					}
				case k < 16:
					what = "a shuffle"
					if _, err := h.svc.Shuffle(ctx, manager); err != nil && errs.CodeOf(err) != errs.Conflict {
						t.Fatalf("step %d: Shuffle: %v", step, err)
					}
				case k < 18:
					p := popugs[steps.IntN(len(popugs))]
					p.active = !p.active
					what = fmt.Sprintf("an account made active=%v", p.active)
					h.MustUpdate(t, p.actor.AccountID, p.role, p.active)
				default:
					p := popugs[steps.IntN(len(popugs))]
					p.role = roles[steps.IntN(len(roles))]
					what = "a role change to " + string(p.role)
					h.MustUpdate(t, p.actor.AccountID, p.role, p.active)
				}
				h.mustCountsTrue(t, fmt.Sprintf("step %d, %s", step, what))

				// The totals the dashboard shows are the tasks it lists.
				stored := h.mustTasks(t)
				open, done := tasks.Open, tasks.Done
				p := popugs[steps.IntN(len(popugs))].actor.AccountID
				for _, f := range []tasks.Filter{{}, {Status: &open}, {Status: &done}, {AssigneeID: &p}, {AssigneeID: &p, Status: &open}} {
					want := 0
					for _, r := range stored {
						if (f.Status == nil || r.Status == string(*f.Status)) && (f.AssigneeID == nil || r.AssigneeID == *f.AssigneeID) {
							want++
						}
					}
					if got := h.mustTotal(t, f); got != want {
						t.Fatalf("step %d, %s: total of %+v = %d, want %d", step, what, f, got, want)
					}
				}
			}
			if len(created) < 20 {
				t.Fatalf("seed %d created only %d tasks: the sequence tests little", seed, len(created))
			}
			if _, err := db.SQL.Exec("DELETE FROM tasks; DELETE FROM task_counts; DELETE FROM accounts; DELETE FROM outbox_events"); err != nil {
				// SQLite and PostgreSQL both take several statements in one Exec without arguments.
				t.Fatal(err)
			}
		}
	})
}

// TestCountersUnderConcurrentChanges: R-TASK-4, R-TASK-7, R-TASK-8 — creations, completions and
// shuffles at once (on PostgreSQL on separate connections, really concurrent) leave every
// counter equal to its tasks counted, and none of them fails for a deadlock or a lost update:
// the counters are locked last in every change, in one order.
func TestCountersUnderConcurrentChanges(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db, withBatch(4))
		db.SQL.SetMaxOpenConns(8)
		manager := h.MustPopug(t, identity.Manager)
		for range 3 {
			h.MustPopug(t, identity.Worker)
		}
		ctx := context.Background()
		var seeded []tasks.Task
		for i := range 30 {
			seeded = append(seeded, h.MustCreate(t, manager, fmt.Sprintf("seed %d", i)))
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			fails []error
		)
		fail := func(err error) {
			mu.Lock()
			fails = append(fails, err)
			mu.Unlock()
		}
		for w := range 4 {
			wg.Go(func() {
				for i := range 10 {
					if _, err := h.svc.Create(ctx, manager, tasks.NewTask{Title: fmt.Sprintf("w%d %d", w, i), Description: "d"}); err != nil {
						fail(fmt.Errorf("Create: %w", err))
					}
				}
			})
		}
		for _, tk := range seeded {
			wg.Go(func() {
				_, err := h.svc.Complete(ctx, identity.Actor{AccountID: tk.AssigneeID, Role: identity.Worker}, tk.ID)
				if err != nil && errs.CodeOf(err) != errs.Forbidden { // lost to a shuffle (R-TASK-8)
					fail(fmt.Errorf("Complete: %w", err))
				}
			})
		}
		for range 3 {
			wg.Go(func() {
				if _, err := h.svc.Shuffle(ctx, manager); err != nil {
					fail(fmt.Errorf("Shuffle: %w", err))
				}
			})
		}
		wg.Wait()
		for _, err := range fails {
			t.Error(err)
		}
		h.mustCountsTrue(t, "concurrent creations, completions and shuffles")
		if total := h.mustTotal(t, tasks.Filter{}); total != 70 {
			t.Fatalf("total %d, want 70", total)
		}
	})
}
