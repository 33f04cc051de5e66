package graph_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/identity"
)

// browser is an HTTP client with a cookie jar, as a browser tab is.
type browser struct {
	tb     testing.TB
	client *http.Client
}

func newBrowser(tb testing.TB) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &browser{tb: tb, client: &http.Client{Jar: jar}}
}

// post sends an operation to base's /graphql with the token ("" = none) and the jar's cookies.
func (b *browser) post(base, token, query string, vars map[string]any) (Response, *http.Response) {
	b.tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := Response{Status: resp.StatusCode, Body: string(raw)}
	if err := json.Unmarshal(raw, &r); err != nil {
		b.tb.Fatalf("not JSON: %s", raw)
	}
	return r, resp
}

// refreshCookie returns the jar's refresh cookie for base ("" when none).
func (b *browser) refreshCookie(base string) string {
	u, _ := url.Parse(base + "/graphql")
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == graph.RefreshCookie {
			return c.Value
		}
	}
	return ""
}

// setRefreshCookie puts a refresh cookie in the jar, as a thief replaying a copy would.
func (b *browser) setRefreshCookie(base, value string) {
	u, _ := url.Parse(base + "/graphql")
	b.client.Jar.SetCookies(u, []*http.Cookie{{Name: graph.RefreshCookie, Value: value, Path: "/graphql"}})
}

const (
	loginMut   = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt account { id } } }`
	refreshMut = `mutation { refreshSession { token account { username } } }`
)

type sessionPayload struct {
	Token   string
	Account struct{ ID, Username string }
}

func (b *browser) login(base, username, password string) sessionPayload {
	b.tb.Helper()
	r, _ := b.post(base, "", loginMut, map[string]any{"u": username, "p": password})
	var out struct{ Login sessionPayload }
	r.MustOK(b.tb, &out)
	return out.Login
}

func (b *browser) refresh(base string) (sessionPayload, Response) {
	b.tb.Helper()
	r, _ := b.post(base, "", refreshMut, nil)
	var out struct{ RefreshSession sessionPayload }
	if len(r.Errors) == 0 {
		r.MustOK(b.tb, &out)
	}
	return out.RefreshSession, r
}

// TestRefreshCookie: R-SESS-1 — login sets the refresh cookie as the spec says (HttpOnly,
// SameSite=Strict, /graphql, not Secure on plain HTTP at a loopback address); refreshSession
// with it returns a new access token and a new cookie; a rotated cookie presented again ends the
// whole session.
func TestRefreshCookie(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		kiwi := g.MustUser(t, "kiwi", identity.Worker)
		b := newBrowser(t)
		_, resp := b.post(g.URL, "", loginMut, map[string]any{"u": kiwi.Username, "p": kiwi.Password})
		set := resp.Header.Get("Set-Cookie")
		for _, want := range []string{graph.RefreshCookie + "=", "Path=/graphql", "HttpOnly", "SameSite=Strict", "Max-Age="} {
			if !strings.Contains(set, want) {
				t.Errorf("Set-Cookie %q lacks %s", set, want)
			}
		}
		if strings.Contains(set, "Secure") {
			t.Errorf("a cookie over plain HTTP on 127.0.0.1 is Secure (the browser would drop it): %q", set)
		}
		first := b.refreshCookie(g.URL)

		// Past the access token's lifetime, the cookie still brings a new one.
		g.Clock.Advance(2 * 60 * 60e9)
		fresh, r := b.refresh(g.URL)
		r.MustOK(t, nil)
		if fresh.Account.Username != "kiwi" {
			t.Fatalf("refreshed %+v", fresh)
		}
		second := b.refreshCookie(g.URL)
		if second == "" || second == first {
			t.Fatalf("the cookie was not rotated: %q → %q", first, second)
		}
		var me struct{ Me struct{ Username string } }
		g.Query(t, fresh.Token, meQuery, nil).MustOK(t, &me)

		// The rotated cookie again: a copy is out there, so the session ends — the current cookie
		// stops working too.
		g.Clock.Advance(60e9) // past the grace two tabs refreshing at once get
		thief := newBrowser(t)
		thief.setRefreshCookie(g.URL, first)
		if _, r := thief.refresh(g.URL); len(r.Errors) == 0 {
			t.Fatal("a rotated refresh token worked again")
		} else {
			r.MustError(t, "UNAUTHENTICATED")
		}
		if _, r := b.refresh(g.URL); len(r.Errors) == 0 {
			t.Fatal("the session survived the reuse of its rotated token")
		}
	})
}

// TestLogoutAcrossGateways: R-SESS-2 — logout ends the session on every gateway: its refresh
// cookie is cleared and refused everywhere, and its access token is refused by a second gateway
// once the session.ended event reaches it.
func TestLogoutAcrossGateways(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		other := g.SecondGateway(t)
		kiwi := g.MustUser(t, "kiwi", identity.Worker)
		b := newBrowser(t)
		s := b.login(g.URL, kiwi.Username, kiwi.Password)
		cookie := b.refreshCookie(g.URL)
		g.Query(t, s.Token, meQuery, nil).MustOK(t, nil)
		other.Query(t, s.Token, meQuery, nil).MustOK(t, nil)

		r, resp := b.post(g.URL, s.Token, `mutation { logout }`, nil)
		r.MustOK(t, nil)
		if set := resp.Header.Get("Set-Cookie"); !strings.Contains(set, graph.RefreshCookie+"=;") || !strings.Contains(set, "Max-Age=0") {
			t.Fatalf("logout did not clear the cookie: %q", set)
		}
		if b.refreshCookie(g.URL) != "" {
			t.Fatal("the browser still holds the cookie")
		}
		thief := newBrowser(t)
		thief.setRefreshCookie(other.URL, cookie)
		if _, r := thief.refresh(other.URL); len(r.Errors) == 0 {
			t.Fatal("the second gateway refreshed a logged-out session")
		}
		other.FeedEvents(t)
		other.Query(t, s.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED")
	})
}

// TestRefreshNeedsAJSONPost: the cookie is read from a POST with a JSON body only — a request a
// foreign page cannot make without a preflight; a GET cannot run the mutation at all.
func TestRefreshNeedsAJSONPost(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		kiwi := g.MustUser(t, "kiwi", identity.Worker)
		b := newBrowser(t)
		b.login(g.URL, kiwi.Username, kiwi.Password)
		for _, req := range []*http.Request{
			func() *http.Request {
				r, _ := http.NewRequest(http.MethodGet, g.URL+"/graphql?query="+url.QueryEscape(refreshMut), nil)
				return r
			}(),
			func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, g.URL+"/graphql", strings.NewReader(`{"query":"mutation { refreshSession { token } }"}`))
				r.Header.Set("Content-Type", "text/plain")
				return r
			}(),
		} {
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || strings.Contains(string(raw), `"token"`) {
				t.Fatalf("%s %s refreshed: %d %s", req.Method, req.Header.Get("Content-Type"), resp.StatusCode, raw)
			}
		}
		if _, r := b.refresh(g.URL); len(r.Errors) > 0 {
			t.Fatalf("the session was spent by the refused requests: %s", r.Body)
		}
	})
}

// TestChangePasswordEndsOtherSessions: R-SESS-3 — the other sessions end; the caller's own
// session goes on (its refresh works), and the old password no longer logs in.
func TestChangePasswordEndsOtherSessions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		kiwi := g.MustUser(t, "kiwi", identity.Worker)
		mine, theirs := newBrowser(t), newBrowser(t)
		s := mine.login(g.URL, kiwi.Username, kiwi.Password)
		theirs.login(g.URL, kiwi.Username, kiwi.Password)
		r, _ := mine.post(g.URL, s.Token, `mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }`,
			map[string]any{"c": kiwi.Password, "n": "a-brand-new-beak"})
		r.MustOK(t, nil)
		if _, r := theirs.refresh(g.URL); len(r.Errors) == 0 {
			t.Fatal("another session survived the password change")
		}
		fresh, r := mine.refresh(g.URL)
		r.MustOK(t, nil)
		g.Query(t, fresh.Token, meQuery, nil).MustOK(t, nil)
		g.FeedEvents(t)
		g.Query(t, s.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED") // issued for the old version
		g.Query(t, "", loginMut, map[string]any{"u": kiwi.Username, "p": kiwi.Password}).MustError(t, "UNAUTHENTICATED")
		newBrowser(t).login(g.URL, kiwi.Username, "a-brand-new-beak")
		wrong, _ := mine.post(g.URL, fresh.Token, `mutation { changePassword(currentPassword: "not-it-at-all", newPassword: "another-new-beak") }`, nil)
		wrong.MustFieldError(t, "currentPassword")
	})
}

// TestRoleChangeAndDeactivationEndSessions: R-SESS-3 — refresh tokens stop working at once.
func TestRoleChangeAndDeactivationEndSessions(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		for _, change := range []string{
			`mutation($id: ID!) { changeRole(accountId: $id, role: ACCOUNTANT) { id } }`,
			deactivateMut,
		} {
			u := g.MustUser(t, "popug"+string(rune('a'+strings.Count(change, "e"))), identity.Worker)
			b := newBrowser(t)
			b.login(g.URL, u.Username, u.Password)
			g.Query(t, g.AdminToken, change, map[string]any{"id": u.ID}).MustOK(t, nil)
			if _, r := b.refresh(g.URL); len(r.Errors) == 0 {
				t.Fatalf("%s: the session survived", change)
			}
		}
	})
}

// TestProfileAndAccountAdministration: updateProfile changes the caller's own name and email
// (validated); reactivateAccount lets a deactivated account in again without reviving tokens
// issued before (R-AUTH-6); searchAccounts finds accounts by a piece of their names, for admins.
func TestProfileAndAccountAdministration(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		kiwi := g.MustUser(t, "kiwi", identity.Worker)
		var upd struct {
			UpdateProfile struct{ FullName, Email string }
		}
		g.Query(t, kiwi.Token, `mutation { updateProfile(fullName: "Кеша Попугаев", email: "kesha@uberpopug.com") { fullName email } }`, nil).MustOK(t, &upd)
		if upd.UpdateProfile.FullName != "Кеша Попугаев" || upd.UpdateProfile.Email != "kesha@uberpopug.com" {
			t.Fatalf("updateProfile = %+v", upd)
		}
		g.Query(t, kiwi.Token, `mutation { updateProfile(email: "not an email") { id } }`, nil).MustFieldError(t, "email")
		// A new name is no reason to sign anyone out: the token still works once every gateway
		// heard of the change (R-SESS-3 names the changes that end sessions; this is not one).
		g.FeedEvents(t)
		g.Query(t, kiwi.Token, meQuery, nil).MustOK(t, nil)

		const search = `query($s: String!) { searchAccounts(search: $s) { totalCount edges { node { username } } } }`
		var found struct {
			SearchAccounts struct {
				TotalCount int
				Edges      []struct{ Node struct{ Username string } }
			}
		}
		g.Query(t, g.AdminToken, search, map[string]any{"s": "ПОПУГ"}).MustOK(t, &found)
		if found.SearchAccounts.TotalCount != 1 || found.SearchAccounts.Edges[0].Node.Username != "kiwi" {
			t.Fatalf("searchAccounts = %+v", found)
		}
		g.Query(t, kiwi.Token, search, map[string]any{"s": "kiwi"}).MustError(t, "FORBIDDEN")

		g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": kiwi.ID}).MustOK(t, nil)
		g.Query(t, "", loginMut, map[string]any{"u": kiwi.Username, "p": kiwi.Password}).MustError(t, "UNAUTHENTICATED")
		const reactivate = `mutation($id: ID!) { reactivateAccount(accountId: $id) { active } }`
		g.Query(t, kiwi.Token, reactivate, map[string]any{"id": kiwi.ID}).MustError(t, "FORBIDDEN") // not an admin
		var re struct{ ReactivateAccount struct{ Active bool } }
		g.Query(t, g.AdminToken, reactivate, map[string]any{"id": kiwi.ID}).MustOK(t, &re)
		if !re.ReactivateAccount.Active {
			t.Fatal("not active after reactivateAccount")
		}
		newBrowser(t).login(g.URL, kiwi.Username, kiwi.Password)
		g.FeedEvents(t)
		g.Query(t, kiwi.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED") // issued before the deactivation
	})
}

// TestSignUpReportsEveryInvalidField: a form shows each problem next to its field at once.
func TestSignUpReportsEveryInvalidField(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		r := g.Query(t, "", `mutation { signUp(input: {username: "X", password: "short", fullName: " ", email: "nope"}) { token } }`, nil)
		e := r.MustError(t, "BAD_USER_INPUT")
		fields, _ := e.Extensions["fields"].([]any)
		var names []string
		for _, f := range fields {
			if m, ok := f.(map[string]any); ok {
				names = append(names, m["field"].(string))
			}
		}
		if strings.Join(names, ",") != "username,password,fullName,email" {
			t.Fatalf("extensions.fields names %v: %s", names, r.Body)
		}
	})
}
