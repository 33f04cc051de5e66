package tasks_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestListMineGet: R-TASK-1, R-TASK-6, R-API-5 — the dashboard lists every task newest first,
// filtered by status and assignee, in cursor pages with the total count; Mine is the caller's
// own tasks; Get any task by id.
func TestListMineGet(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		p1, p2 := h.MustPopug(t, identity.Worker), h.MustPopug(t, identity.Accountant)
		admin := h.MustPopug(t, identity.Admin)
		ctx := context.Background()

		// 25 tasks, created a minute apart; every third completed.
		var all []tasks.Task // oldest first
		for i := range 25 {
			tk := h.MustCreate(t, admin, fmt.Sprintf("task %02d", i))
			if i%3 == 0 {
				tk = h.MustComplete(t, tk)
			}
			all = append(all, tk)
			h.clock.Advance(time.Minute)
		}
		newestFirst := func(keep func(tasks.Task) bool) []string {
			var out []string
			for i := len(all) - 1; i >= 0; i-- {
				if keep(all[i]) {
					out = append(out, all[i].Title)
				}
			}
			return out
		}
		open, done := tasks.Open, tasks.Done
		p1ID := p1.AccountID
		nobody := uuid.New()
		tests := []struct {
			name   string
			filter tasks.Filter
			keep   func(tasks.Task) bool
		}{
			{"all", tasks.Filter{}, func(tasks.Task) bool { return true }},
			{"open", tasks.Filter{Status: &open}, func(t tasks.Task) bool { return t.Status == tasks.Open }},
			{"done", tasks.Filter{Status: &done}, func(t tasks.Task) bool { return t.Status == tasks.Done }},
			{"p1's", tasks.Filter{AssigneeID: &p1ID}, func(t tasks.Task) bool { return t.AssigneeID == p1ID }},
			{"p1's open", tasks.Filter{Status: &open, AssigneeID: &p1ID}, func(t tasks.Task) bool {
				return t.AssigneeID == p1ID && t.Status == tasks.Open
			}},
			{"nobody's", tasks.Filter{AssigneeID: &nobody}, func(tasks.Task) bool { return false }},
		}
		for _, tt := range tests {
			want := newestFirst(tt.keep)
			for _, size := range []int{1, 7, 25, 100} {
				got := walk(t, len(want), size, func(req page.Request) (page.Page[tasks.Task], error) {
					return h.svc.List(ctx, p2, tt.filter, req)
				})
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s in pages of %d = %v, want %v", tt.name, size, got, want)
				}
			}
		}
		if n := len(newestFirst(func(t tasks.Task) bool { return t.AssigneeID == p1ID })); n == 0 || n == 25 {
			t.Fatalf("the draws gave p1 %d of 25 tasks; the filter test needs a mix", n)
		}

		// Mine: the caller's own tasks only, with the status filter.
		for _, p := range []identity.Actor{p1, p2, admin} {
			want := newestFirst(func(t tasks.Task) bool { return t.AssigneeID == p.AccountID })
			got := walk(t, len(want), 4, func(req page.Request) (page.Page[tasks.Task], error) {
				return h.svc.Mine(ctx, p, nil, req)
			})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Mine(%s) = %v, want %v", p.Role, got, want)
			}
			want = newestFirst(func(t tasks.Task) bool { return t.AssigneeID == p.AccountID && t.Status == tasks.Done })
			got = walk(t, len(want), 4, func(req page.Request) (page.Page[tasks.Task], error) {
				return h.svc.Mine(ctx, p, &done, req)
			})
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Mine(%s, DONE) = %v, want %v", p.Role, got, want)
			}
		}

		// Get returns the task as stored, to anyone authenticated.
		for _, tk := range []tasks.Task{all[0], all[24]} {
			got, err := h.svc.Get(ctx, p2, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tk.ID || got.Title != tk.Title || got.Status != tk.Status || got.AssigneeID != tk.AssigneeID ||
				!got.CreatedAt.Equal(tk.CreatedAt) || (got.CompletedAt == nil) != (tk.CompletedAt == nil) {
				t.Fatalf("Get = %+v, want %+v", got, tk)
			}
		}
		_, err := h.svc.Get(ctx, p2, uuid.New())
		mustCode(t, err, errs.NotFound)
		_, err = h.svc.Get(ctx, identity.Actor{}, all[0].ID)
		mustCode(t, err, errs.Unauthenticated)
		_, err = h.svc.List(ctx, identity.Actor{}, tasks.Filter{}, page.Request{First: 5})
		mustCode(t, err, errs.Unauthenticated)
		_, err = h.svc.Mine(ctx, identity.Actor{}, nil, page.Request{First: 5})
		mustCode(t, err, errs.Unauthenticated)
	})
}

// walk pages through a list with pages of size, checking every page's bookkeeping, and returns
// the titles in order.
func walk(tb testing.TB, total, size int, list func(page.Request) (page.Page[tasks.Task], error)) []string {
	tb.Helper()
	var titles []string
	req := page.Request{First: size}
	for pages := 0; ; pages++ {
		if pages > total+1 {
			tb.Fatalf("pagination does not end")
		}
		p, err := list(req)
		if err != nil {
			tb.Fatal(err)
		}
		if p.TotalCount != total {
			tb.Fatalf("totalCount = %d on page %d, want %d", p.TotalCount, pages, total)
		}
		if p.HasPrev != (pages > 0) {
			tb.Fatalf("hasPreviousPage = %v on page %d", p.HasPrev, pages)
		}
		if len(p.Items) != len(p.Keys) || len(p.Items) > size {
			tb.Fatalf("page %d: %d items, %d keys, size %d", pages, len(p.Items), len(p.Keys), size)
		}
		for i := 1; i < len(p.Keys); i++ {
			if p.Keys[i] >= p.Keys[i-1] {
				tb.Fatalf("keys %v are not newest first", p.Keys)
			}
		}
		for _, it := range p.Items {
			titles = append(titles, it.Title)
		}
		wantNext := len(titles) < total
		if p.HasNext != wantNext {
			tb.Fatalf("page %d: hasNextPage = %v after %d of %d", pages, p.HasNext, len(titles), total)
		}
		if !p.HasNext {
			return titles
		}
		if len(p.Items) != size {
			tb.Fatalf("a page with a next page has %d items, want %d", len(p.Items), size)
		}
		req.After = p.Keys[len(p.Keys)-1]
	}
}
