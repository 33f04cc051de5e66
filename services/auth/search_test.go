package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// searchAll pages through Search and returns the usernames found, in order.
func searchAll(tb testing.TB, h *harness, admin identity.Actor, search string, first int) ([]string, int) {
	tb.Helper()
	var got []string
	total := -1
	req := page.Request{First: first}
	for {
		p, err := h.svc.Search(context.Background(), admin, search, req)
		if err != nil {
			tb.Fatalf("Search(%q): %v", search, err)
		}
		if total >= 0 && p.TotalCount != total {
			tb.Fatalf("Search(%q): total changed between pages", search)
		}
		total = p.TotalCount
		if p.HasPrev != (req.After > 0) || len(p.Items) != len(p.Keys) {
			tb.Fatalf("Search(%q): page %+v", search, p)
		}
		for _, a := range p.Items {
			got = append(got, a.Username)
		}
		if !p.HasNext {
			return got, total
		}
		req.After = p.Keys[len(p.Keys)-1]
	}
}

// TestSearch: R-WEB-7 — an admin finds accounts whose username, full name or email contains
// the search, case-insensitively in any script, with '%', '_' and '\' taken literally, in
// creation order, paged with List's cursors; only admins; the search is bounded and clean.
func TestSearch(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t) // "root", "Administrator", root@uberpopug.local
		for _, a := range []auth.NewAccount{
			{Username: "kesha", FullName: "Иннокентий Попугай", Email: "kesha@birds.org"},
			{Username: "gosha", FullName: "Gosha 100% Parrot", Email: "gosha@birds.org"},
			{Username: "popka", FullName: "Back\\slash Popka", Email: "popka@cage.net"},
			{Username: "under_score", FullName: "Ara", Email: "ara@cage.net"},
			{Username: "zhako", FullName: "ЖАКО СЕРЫЙ", Email: "zhako@birds.org"},
		} {
			a.Password, a.Role = "beak-print", identity.Worker
			if _, err := h.svc.CreateAccount(ctx, admin, a); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			search string
			want   string
		}{
			{"попуг", "kesha"},
			{"ПОПУГАЙ", "kesha"},
			{"жако серый", "zhako"},
			{"Серый", "zhako"},
			{"BIRDS.ORG", "kesha,gosha,zhako"},
			{"popka", "popka"},
			{"Pop", "root,popka"}, // root@uberpopug.local
			{"100%", "gosha"},
			{"%", "gosha"},
			{"_", "under_score"},
			{"\\", "popka"},
			{"o%p", ""},
			{"k_sha", ""},
			{"r_o", ""},
			{"", "root,kesha,gosha,popka,under_score,zhako"},
			{"cage", "popka,under_score"},
			{"root", "root"},
			{"nothing like it", ""},
		}
		for _, tt := range tests {
			for _, first := range []int{1, 2, 20} {
				got, total := searchAll(t, h, admin, tt.search, first)
				if strings.Join(got, ",") != tt.want {
					t.Fatalf("Search(%q) by %d = %v, want %s", tt.search, first, got, tt.want)
				}
				if total != len(got) {
					t.Fatalf("Search(%q): total %d for %d accounts", tt.search, total, len(got))
				}
			}
		}
		// The search text follows profile changes.
		s, err := h.svc.Login(ctx, "gosha", "beak-print", "")
		if err != nil {
			t.Fatal(err)
		}
		name := "Гоша Какаду"
		if _, err := h.svc.UpdateProfile(ctx, actorOf(s), &name, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := searchAll(t, h, admin, "какаду", 20); strings.Join(got, ",") != "gosha" {
			t.Fatalf("after a rename: %v", got)
		}
		if got, _ := searchAll(t, h, admin, "100%", 20); len(got) != 0 {
			t.Fatalf("the old name is still found: %v", got)
		}

		for _, role := range []identity.Role{identity.Manager, identity.Accountant, identity.Worker} {
			_, err := h.svc.Search(ctx, identity.Actor{AccountID: uuid.New(), Role: role}, "popug", page.Request{First: 20})
			mustErr(t, err, errs.Forbidden, "")
		}
		for _, bad := range []string{strings.Repeat("a", auth.MaxSearchLen+1), "po\x00pug", "po\npug", "\u202epopug", "\xff"} {
			_, err := h.svc.Search(ctx, admin, bad, page.Request{First: 20})
			mustErr(t, err, errs.Invalid, "search")
		}
		if got, _ := searchAll(t, h, admin, strings.Repeat("a", auth.MaxSearchLen), 20); len(got) != 0 {
			t.Fatalf("a search of the longest length: %v", got)
		}
	})
}

// TestSearchUsesTheTrigramIndex: R-WEB-7 — on PostgreSQL the search is served by the trigram
// index auth.Migrate creates: the search's query scans that index (PostgreSQL's statistics count
// the scan in the transaction, pg_stat_get_xact_numscans) and finds the account. Sequential
// scans are off for the transaction because the test's table is small enough to read whole.
func TestSearchUsesTheTrigramIndex(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, "postgres")
	h := MustService(t, db)
	h.mustSignUp(t, "popug")
	tx, err := db.SQL.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	const scans = `SELECT pg_stat_get_xact_numscans('account_search_text_trgm'::regclass)`
	var before, after int
	if err := tx.QueryRow(scans).Scan(&before); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query(`SELECT id FROM accounts WHERE search_text LIKE '%popug%' ORDER BY id LIMIT 21`)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for rows.Next() {
		found++
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow(scans).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Errorf("the search did not scan the trigram index")
	}
	if found != 1 {
		t.Errorf("the search found %d accounts, want 1", found)
	}
}
