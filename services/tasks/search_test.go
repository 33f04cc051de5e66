package tasks_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
	"github.com/uberpopug/ates/services/tasks"
)

// TestSearch: searchTasks (contract version 2) — a case-insensitive substring of the title,
// the Jira id or the description, Unicode included, newest first, narrowed by status, paged;
// wildcards are literal; nothing matches across two texts; anonymous callers are refused.
func TestSearch(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		p := h.MustPopug(t, identity.Worker)
		ctx := context.Background()
		create := func(title string, jira *string, desc string) tasks.Task {
			tk, err := h.svc.Create(ctx, p, tasks.NewTask{Title: title, JiraID: jira, Description: desc})
			if err != nil {
				t.Fatal(err)
			}
			return tk
		}
		jira := "UBERPOP-42"
		beak := create("Fix the beak scanner", &jira, "It scans 100% of beaks")
		popug := create("Покормить попугая", nil, "Зерно в кормушке_2")
		feather := create("Count feathers", nil, "Every feather, from beak to tail")
		done := h.MustComplete(t, create("Old beak report", nil, "Archive it"))

		titles := func(search string, status *tasks.Status, req page.Request) []string {
			t.Helper()
			got, err := h.svc.Search(ctx, p, search, status, req)
			if err != nil {
				t.Fatalf("Search(%q): %v", search, err)
			}
			var out []string
			for _, tk := range got.Items {
				out = append(out, tk.Title)
			}
			return out
		}
		all := page.Request{First: page.MaxFirst}
		open := tasks.Open
		for _, c := range []struct {
			search string
			status *tasks.Status
			want   []string
		}{
			{"BEAK", nil, []string{done.Title, feather.Title, beak.Title}},
			{"beak", &open, []string{feather.Title, beak.Title}},
			{"uberpop-4", nil, []string{beak.Title}},
			{"ПОПУГ", nil, []string{popug.Title}},
			{"100%", nil, []string{beak.Title}},
			{"%", nil, []string{beak.Title}},
			{"_", nil, []string{popug.Title}},
			{"e_2", nil, nil},
			{"scannerIt", nil, nil},
			{"nothing like this", nil, nil},
		} {
			if got := titles(c.search, c.status, all); !slices.Equal(got, c.want) {
				t.Errorf("Search(%q) = %q, want %q", c.search, got, c.want)
			}
		}
		first, err := h.svc.Search(ctx, p, "beak", nil, page.Request{First: 2})
		if err != nil || first.TotalCount != 3 || !first.HasNext || len(first.Items) != 2 {
			t.Fatalf("first page %+v, %v", first, err)
		}
		if rest := titles("beak", nil, page.Request{First: 2, After: first.Keys[1]}); !slices.Equal(rest, []string{beak.Title}) {
			t.Fatalf("second page %q", rest)
		}
		// The totals: counted from the search texts alone without a status, joined with the
		// tasks with one; wildcards literal in both.
		for _, c := range []struct {
			search string
			status *tasks.Status
			want   int
		}{{"beak", &open, 2}, {"%", nil, 1}, {"%", &open, 1}, {"nothing like this", nil, 0}} {
			got, err := h.svc.Search(ctx, p, c.search, c.status, page.Request{First: 1})
			if err != nil || got.TotalCount != c.want {
				t.Errorf("Search(%q, %v) total %d, %v; want %d", c.search, c.status, got.TotalCount, err, c.want)
			}
		}
		for _, bad := range []string{"", "   ", strings.Repeat("a", tasks.MaxSearchLen+1), "\x1f"} {
			_, err := h.svc.Search(ctx, p, bad, nil, all)
			mustCode(t, err, errs.Invalid)
		}
		_, err = h.svc.Search(ctx, identity.Actor{AccountID: uuid.Nil}, "beak", nil, all)
		mustCode(t, err, errs.Unauthenticated)
	})
}

// TestSearchTextMovedOutOfTasks: a database from before task_search, whose tasks held their
// search text in a column of their own (NULL for tasks stored before there was a search text),
// gets every task's search text in task_search at migration, loses the column, and its tasks
// are found; a second migration changes nothing.
func TestSearchTextMovedOutOfTasks(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		p := h.MustPopug(t, identity.Worker)
		old := h.MustCreate(t, p, "Ancient Task")
		kept := h.MustCreate(t, p, "Kept Task")
		// The old layout: the text in tasks.search_text, none for the oldest task.
		for _, q := range []string{
			"DELETE FROM task_search",
			"ALTER TABLE tasks ADD COLUMN search_text text",
			"UPDATE tasks SET search_text = 'kept task' WHERE public_id = '" + kept.ID.String() + "'",
		} {
			if _, err := db.SQL.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		if got, _ := h.svc.Search(ctx, p, "task", nil, page.Request{First: 10}); len(got.Items) != 0 {
			t.Fatalf("found before the migration: %+v", got.Items)
		}
		mustMigrate(t, db)
		for search, want := range map[string]uuid.UUID{"ancient": old.ID, "kept": kept.ID} {
			got, err := h.svc.Search(ctx, p, search, nil, page.Request{First: 10})
			if err != nil || len(got.Items) != 1 || got.Items[0].ID != want {
				t.Fatalf("%q after the migration: %+v, %v", search, got.Items, err)
			}
		}
		if _, err := db.SQL.Exec("SELECT search_text FROM tasks"); err == nil {
			t.Fatal("tasks still has a search_text column after the migration")
		}
		var n int
		if err := db.SQL.QueryRow("SELECT count(*) FROM task_search").Scan(&n); err != nil || n != 2 {
			t.Fatalf("task_search holds %d rows (%v), want 2", n, err)
		}
		mustMigrate(t, db)
		if err := db.SQL.QueryRow("SELECT count(*) FROM task_search").Scan(&n); err != nil || n != 2 {
			t.Fatalf("after a second migration task_search holds %d rows (%v), want 2", n, err)
		}
	})
}
