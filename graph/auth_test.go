package graph_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/identity"
)

const accountFields = `id username fullName email role active createdAt`

type account struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	FullName  string `json:"fullName"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	Active    bool   `json:"active"`
	CreatedAt string `json:"createdAt"`
}

type authPayload struct {
	Token     string  `json:"token"`
	ExpiresAt string  `json:"expiresAt"`
	Account   account `json:"account"`
}

const (
	signUpMutation = `mutation($input: SignUpInput!) { signUp(input: $input) { token expiresAt account { ` + accountFields + ` } } }`
	loginMutation  = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt account { ` + accountFields + ` } } }`
	meQuery        = `{ me { ` + accountFields + ` } }`
	createMutation = `mutation($input: CreateAccountInput!) { createAccount(input: $input) { ` + accountFields + ` } }`
	roleMutation   = `mutation($id: ID!, $role: Role!) { changeRole(accountId: $id, role: $role) { ` + accountFields + ` } }`
	deactivateMut  = `mutation($id: ID!) { deactivateAccount(accountId: $id) { ` + accountFields + ` } }`
	accountsQuery  = `query($first: Int, $after: String, $role: Role) {
		accounts(first: $first, after: $after, role: $role) {
			totalCount
			pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
			edges { cursor node { ` + accountFields + ` } }
		}
	}`
)

type connection struct {
	TotalCount int `json:"totalCount"`
	PageInfo   struct {
		HasNextPage     bool    `json:"hasNextPage"`
		HasPreviousPage bool    `json:"hasPreviousPage"`
		StartCursor     *string `json:"startCursor"`
		EndCursor       *string `json:"endCursor"`
	} `json:"pageInfo"`
	Edges []struct {
		Cursor string  `json:"cursor"`
		Node   account `json:"node"`
	} `json:"edges"`
}

func signUpInput(username string) map[string]any {
	return map[string]any{"input": map[string]any{
		"username": username, "password": "beak-" + username, "fullName": "Popug " + username, "email": username + "@uberpopug.com",
	}}
}

func createInput(username, role string) map[string]any {
	in := signUpInput(username)
	in["input"].(map[string]any)["role"] = role
	return in
}

// TestAuthFlow walks the main auth story through the real handler, on SQLite and PostgreSQL.
func TestAuthFlow(t *testing.T) {
	t.Parallel()
	for _, d := range []string{dialect.SQLite, dialect.Postgres} {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t, OnDialect(d))

			// Anyone signs up and becomes a WORKER (R-AUTH-2).
			var su struct{ SignUp authPayload }
			g.Query(t, "", signUpMutation, signUpInput("popug")).MustOK(t, &su)
			a := su.SignUp.Account
			if _, err := uuid.Parse(a.ID); err != nil || a.Username != "popug" || a.Role != "WORKER" || !a.Active ||
				a.Email != "popug@uberpopug.com" || a.FullName != "Popug popug" || a.CreatedAt != "2026-03-01T09:00:00Z" {
				t.Fatalf("signed-up account = %+v", a)
			}
			if su.SignUp.Token == "" || su.SignUp.ExpiresAt != "2026-03-01T10:00:00Z" {
				t.Fatalf("sign-up payload = %+v, want a token expiring in 1 h", su.SignUp)
			}

			// Login returns a token for the same account (R-AUTH-4).
			var li struct{ Login authPayload }
			g.Query(t, "", loginMutation, map[string]any{"u": "popug", "p": "beak-popug"}).MustOK(t, &li)
			if li.Login.Account != a || li.Login.Token == "" {
				t.Fatalf("login payload = %+v", li.Login)
			}
			var me struct{ Me account }
			g.Query(t, li.Login.Token, meQuery, nil).MustOK(t, &me)
			if me.Me != a {
				t.Fatalf("me = %+v, want %+v", me.Me, a)
			}

			// The admin creates a manager, promotes the popug, lists, and deactivates.
			var ca struct{ CreateAccount account }
			g.Query(t, g.AdminToken, createMutation, createInput("boss", "MANAGER")).MustOK(t, &ca)
			if ca.CreateAccount.Role != "MANAGER" || ca.CreateAccount.Username != "boss" || !ca.CreateAccount.Active {
				t.Fatalf("created = %+v", ca.CreateAccount)
			}
			var cr struct{ ChangeRole account }
			g.Query(t, g.AdminToken, roleMutation, map[string]any{"id": a.ID, "role": "ACCOUNTANT"}).MustOK(t, &cr)
			if cr.ChangeRole.ID != a.ID || cr.ChangeRole.Role != "ACCOUNTANT" {
				t.Fatalf("changeRole = %+v", cr.ChangeRole)
			}
			var list struct{ Accounts connection }
			g.Query(t, g.AdminToken, accountsQuery, nil).MustOK(t, &list)
			var got []string
			for _, e := range list.Accounts.Edges {
				got = append(got, e.Node.Username+":"+e.Node.Role)
			}
			if list.Accounts.TotalCount != 3 || strings.Join(got, ",") != "root:ADMIN,popug:ACCOUNTANT,boss:MANAGER" {
				t.Fatalf("accounts = %d %v", list.Accounts.TotalCount, got)
			}
			var de struct{ DeactivateAccount account }
			g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": ca.CreateAccount.ID}).MustOK(t, &de)
			if de.DeactivateAccount.Active || de.DeactivateAccount.ID != ca.CreateAccount.ID {
				t.Fatalf("deactivateAccount = %+v", de.DeactivateAccount)
			}
			e := g.Query(t, "", loginMutation, map[string]any{"u": "boss", "p": "beak-boss"}).MustError(t, "UNAUTHENTICATED")
			if !strings.Contains(e.Message, "deactivated") {
				t.Fatalf("deactivated login message = %q", e.Message)
			}

			// Once the account events reach the gateway, the popug's pre-promotion token is refused
			// and a fresh login carries the new role.
			g.FeedEvents(t)
			g.Query(t, li.Login.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED")
			g.Query(t, "", loginMutation, map[string]any{"u": "popug", "p": "beak-popug"}).MustOK(t, &li)
			g.Query(t, li.Login.Token, meQuery, nil).MustOK(t, &me)
			if me.Me.Role != "ACCOUNTANT" {
				t.Fatalf("me after the role change = %+v", me.Me)
			}
		})
	}
}

// op is one auth operation of the contract, run as some caller.
type op struct {
	name  string
	query string
	vars  func(g *Gateway, target User) map[string]any
}

var authOps = []op{
	{"me", meQuery, func(*Gateway, User) map[string]any { return nil }},
	{"accounts", accountsQuery, func(*Gateway, User) map[string]any { return map[string]any{"first": 5} }},
	{"createAccount", createMutation, func(_ *Gateway, t User) map[string]any { return createInput("new-"+t.Username, "WORKER") }},
	{"changeRole", roleMutation, func(_ *Gateway, t User) map[string]any { return map[string]any{"id": t.ID, "role": "MANAGER"} }},
	{"deactivateAccount", deactivateMut, func(_ *Gateway, t User) map[string]any { return map[string]any{"id": t.ID} }},
	{"signUp", signUpMutation, func(_ *Gateway, t User) map[string]any { return signUpInput("su-" + t.Username) }},
	{"login", loginMutation, func(_ *Gateway, t User) map[string]any {
		return map[string]any{"u": t.Username, "p": t.Password}
	}},
}

// TestAuthAccessByRole runs every auth operation as every kind of caller (R-AUTH-2, R-API-4).
func TestAuthAccessByRole(t *testing.T) {
	t.Parallel()
	// want[caller][operation] is the error code, "" when allowed.
	adminOnly := map[string]string{"me": "", "accounts": "FORBIDDEN", "createAccount": "FORBIDDEN", "changeRole": "FORBIDDEN",
		"deactivateAccount": "FORBIDDEN", "signUp": "", "login": ""}
	want := map[string]map[string]string{
		"anonymous": {"me": "UNAUTHENTICATED", "accounts": "UNAUTHENTICATED", "createAccount": "UNAUTHENTICATED",
			"changeRole": "UNAUTHENTICATED", "deactivateAccount": "UNAUTHENTICATED", "signUp": "", "login": ""},
		"WORKER": adminOnly, "MANAGER": adminOnly, "ACCOUNTANT": adminOnly,
		"ADMIN": {"me": "", "accounts": "", "createAccount": "", "changeRole": "", "deactivateAccount": "", "signUp": "", "login": ""},
	}
	g := MustGateway(t)
	callers := map[string]string{"anonymous": "", "ADMIN": g.AdminToken}
	for _, r := range []identity.Role{identity.Worker, identity.Manager, identity.Accountant} {
		callers[string(r)] = g.MustUser(t, "as-"+strings.ToLower(string(r)), r).Token
	}
	n := 0
	for caller, token := range callers {
		for _, o := range authOps {
			n++
			target := g.MustUser(t, fmt.Sprintf("target%02d", n), identity.Worker)
			r := g.Query(t, token, o.query, o.vars(g, target))
			code := want[caller][o.name]
			if code == "" {
				if len(r.Errors) > 0 {
					t.Errorf("%s %s: want success, got %s", caller, o.name, r.Body)
				}
				continue
			}
			if len(r.Errors) == 0 {
				t.Errorf("%s %s: want %s, got %s", caller, o.name, code, r.Body)
				continue
			}
			r.MustError(t, code)
		}
	}
	// Refused changes changed nothing: only the admin's own calls left a mark.
	var list struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": 100}).MustOK(t, &list)
	changed := 0
	for _, e := range list.Accounts.Edges {
		if strings.HasPrefix(e.Node.Username, "target") && (e.Node.Role != "WORKER" || !e.Node.Active) {
			changed++
		}
	}
	if changed != 2 { // the admin's changeRole and deactivateAccount
		t.Fatalf("%d targets were changed, want 2", changed)
	}
}

func TestSignUpBadInput(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	tests := []struct {
		name  string
		edit  func(in map[string]any)
		field string
	}{
		{"username 2 chars", func(in map[string]any) { in["username"] = "ab" }, "username"},
		{"username 33 chars", func(in map[string]any) { in["username"] = strings.Repeat("a", 33) }, "username"},
		{"username uppercase", func(in map[string]any) { in["username"] = "Popug" }, "username"},
		{"username space", func(in map[string]any) { in["username"] = "po pug" }, "username"},
		{"password 7 chars", func(in map[string]any) { in["password"] = "1234567" }, "password"},
		{"password 129 chars", func(in map[string]any) { in["password"] = strings.Repeat("p", 129) }, "password"},
		{"fullName blank", func(in map[string]any) { in["fullName"] = "   " }, "fullName"},
		{"fullName 201 chars", func(in map[string]any) { in["fullName"] = strings.Repeat("n", 201) }, "fullName"},
		{"email invalid", func(in map[string]any) { in["email"] = "not-an-email" }, "email"},
		{"username taken", func(in map[string]any) { in["username"] = "root" }, "username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := signUpInput("valid-user")
			tt.edit(vars["input"].(map[string]any))
			g.Query(t, "", signUpMutation, vars).MustFieldError(t, tt.field)
		})
	}
	t.Run("createAccount", func(t *testing.T) {
		t.Parallel()
		vars := createInput("x", "WORKER")
		g.Query(t, g.AdminToken, createMutation, vars).MustFieldError(t, "username")
		vars = createInput("valid-role", "ROOT") // not a value of the contract's enum
		g.Query(t, g.AdminToken, createMutation, vars).MustError(t, "BAD_USER_INPUT")
		g.Query(t, g.AdminToken, `mutation { changeRole(accountId: "`+g.AdminID+`", role: ROOT) { id } }`, nil).MustError(t, "BAD_USER_INPUT")
	})
	t.Run("missing input field", func(t *testing.T) {
		t.Parallel()
		vars := signUpInput("nomail")
		delete(vars["input"].(map[string]any), "email")
		g.Query(t, "", signUpMutation, vars).MustError(t, "BAD_USER_INPUT")
	})
}

func TestAccountsPagination(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	for i := range 22 {
		role := identity.Worker
		if i%3 == 0 {
			role = identity.Manager
		}
		g.MustUser(t, fmt.Sprintf("popug%02d", i), role)
	}
	var page1 struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, nil).MustOK(t, &page1)
	c := page1.Accounts
	if c.TotalCount != 23 || len(c.Edges) != 20 || !c.PageInfo.HasNextPage || c.PageInfo.HasPreviousPage {
		t.Fatalf("default page: total %d, %d edges, pageInfo %+v; want 23, 20 (R-API-5 default)", c.TotalCount, len(c.Edges), c.PageInfo)
	}
	if c.Edges[0].Node.Username != "root" || c.Edges[19].Node.Username != "popug18" {
		t.Fatalf("default page runs %s…%s", c.Edges[0].Node.Username, c.Edges[19].Node.Username)
	}
	if *c.PageInfo.StartCursor != c.Edges[0].Cursor || *c.PageInfo.EndCursor != c.Edges[19].Cursor {
		t.Fatalf("pageInfo cursors %v/%v do not match the edges", *c.PageInfo.StartCursor, *c.PageInfo.EndCursor)
	}
	var page2 struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": 20, "after": *c.PageInfo.EndCursor}).MustOK(t, &page2)
	c2 := page2.Accounts
	if len(c2.Edges) != 3 || c2.PageInfo.HasNextPage || !c2.PageInfo.HasPreviousPage || c2.Edges[0].Node.Username != "popug19" || c2.TotalCount != 23 {
		t.Fatalf("second page = %+v", c2)
	}

	var managers struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": 3, "role": "MANAGER"}).MustOK(t, &managers)
	m := managers.Accounts
	if m.TotalCount != 8 || len(m.Edges) != 3 || !m.PageInfo.HasNextPage {
		t.Fatalf("managers = total %d, %d edges, %+v", m.TotalCount, len(m.Edges), m.PageInfo)
	}
	for _, e := range m.Edges {
		if e.Node.Role != "MANAGER" {
			t.Fatalf("role filter let %+v through", e.Node)
		}
	}
	var empty struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"role": "ACCOUNTANT"}).MustOK(t, &empty)
	if empty.Accounts.TotalCount != 0 || len(empty.Accounts.Edges) != 0 || empty.Accounts.PageInfo.StartCursor != nil {
		t.Fatalf("no accountants = %+v", empty.Accounts)
	}

	var hundred struct{ Accounts connection }
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": 100}).MustOK(t, &hundred)
	if len(hundred.Accounts.Edges) != 23 {
		t.Fatalf("first 100 gave %d edges", len(hundred.Accounts.Edges))
	}
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": 101}).MustFieldError(t, "first")
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"first": -1}).MustFieldError(t, "first")
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"after": "garbage"}).MustFieldError(t, "after")
	g.Query(t, g.AdminToken, accountsQuery, map[string]any{"after": base64.RawURLEncoding.EncodeToString([]byte("c:-5"))}).MustFieldError(t, "after")
	g.Query(t, g.AdminToken, `{ accounts(first: 1000) { totalCount } }`, nil).MustFieldError(t, "first")
}

func TestAccountIDArguments(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	for _, q := range []string{roleMutation, deactivateMut} {
		for _, id := range []string{"not-an-id", "", "123", "00000000-0000-0000-0000-00000000000g"} {
			g.Query(t, g.AdminToken, q, map[string]any{"id": id, "role": "WORKER"}).MustFieldError(t, "accountId")
		}
		g.Query(t, g.AdminToken, q, map[string]any{"id": uuid.NewString(), "role": "WORKER"}).MustError(t, "NOT_FOUND")
		e := g.Query(t, g.AdminToken, q, map[string]any{"id": g.AdminID, "role": "WORKER"}).MustError(t, "CONFLICT")
		if !strings.Contains(e.Message, "own") {
			t.Fatalf("self-change message = %q", e.Message)
		}
	}
}

// mustKid returns the kid of a token the gateway issued.
func mustKid(tb testing.TB, token string) string {
	tb.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		tb.Fatal(err)
	}
	var header struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &header); err != nil || header.Kid == "" {
		tb.Fatalf("token header %s has no kid (%v)", raw, err)
	}
	return header.Kid
}

func TestBadTokens(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	kid := mustKid(t, g.AdminToken)
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := auth.Claims{
		Role: "ADMIN", Version: 1,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: auth.TokenIssuer, Subject: g.AdminID, Audience: jwt.ClaimStrings{auth.TokenAudience},
			IssuedAt: jwt.NewNumericDate(start), ExpiresAt: jwt.NewNumericDate(start.Add(time.Hour)),
		},
	}
	sign := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, payload, _ := strings.Cut(g.AdminToken, ".")
	payload, _, _ = strings.Cut(payload, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
	keys, err := g.Auth.PublicKeys(context.Background())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}

	headers := map[string]string{
		"wrong signature (same kid)": "Bearer " + sign(jwt.SigningMethodEdDSA, otherKey),
		"alg none":                   "Bearer " + noneHeader + "." + payload + ".",
		"HS256 with the public key":  "Bearer " + sign(jwt.SigningMethodHS256, []byte(keys[0].Key)),
		"garbage token":              "Bearer not-a-token",
		"truncated token":            "Bearer " + g.AdminToken[:len(g.AdminToken)-5],
		"Basic scheme":               "Basic cm9vdDpyb290LWJlYWstcHJpbnQ=",
		"token without scheme":       g.AdminToken,
		"scheme without token":       "Bearer",
		"scheme and blank":           "Bearer    ",
	}
	for name, h := range headers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g.Post(t, h, meQuery, nil).MustError(t, "UNAUTHENTICATED")
			g.Post(t, h, accountsQuery, nil).MustError(t, "UNAUTHENTICATED")
		})
	}
	t.Run("scheme is case-insensitive", func(t *testing.T) {
		t.Parallel()
		var me struct{ Me account }
		g.Post(t, "bearer "+g.AdminToken, meQuery, nil).MustOK(t, &me)
		if me.Me.Username != "root" {
			t.Fatalf("me = %+v", me.Me)
		}
	})
}

func TestExpiredToken(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "popug", identity.Worker)
	g.Clock.Advance(59 * time.Minute)
	g.Query(t, w.Token, meQuery, nil).MustOK(t, nil)
	g.Clock.Advance(time.Minute + time.Second)
	e := g.Query(t, w.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED")
	if !strings.Contains(e.Message, "expired") {
		t.Fatalf("message = %q, want it to say the token expired", e.Message)
	}
}

// TestDeactivatedTokenRefused: R-AUTH-5 — an existing token stops working once the
// deactivation reaches the gateway, long before it expires.
func TestDeactivatedTokenRefused(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "popug", identity.Worker)
	other := g.MustUser(t, "bystander", identity.Worker)
	g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": w.ID}).MustOK(t, nil)
	g.FeedEvents(t)
	e := g.Query(t, w.Token, meQuery, nil).MustError(t, "UNAUTHENTICATED")
	if !strings.Contains(e.Message, "deactivated") {
		t.Fatalf("message = %q", e.Message)
	}
	g.Query(t, other.Token, meQuery, nil).MustOK(t, nil)
	g.Query(t, "", loginMutation, map[string]any{"u": w.Username, "p": w.Password}).MustError(t, "UNAUTHENTICATED")
}

func TestLoginThrottledOverGraphQL(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "popug", identity.Worker)
	for range 5 {
		e := g.Query(t, "", loginMutation, map[string]any{"u": w.Username, "p": "wrong-beak"}).MustError(t, "UNAUTHENTICATED")
		if e.Message != "wrong username or beak print" {
			t.Fatalf("message = %q", e.Message)
		}
	}
	e := g.Query(t, "", loginMutation, map[string]any{"u": w.Username, "p": w.Password}).MustError(t, "UNAUTHENTICATED")
	if retry, _ := e.Extensions["retryAfter"].(float64); retry != 60 {
		t.Fatalf("blocked login: %q, extensions %v; want retryAfter 60", e.Message, e.Extensions)
	}
	g.Clock.Advance(time.Minute)
	g.Query(t, "", loginMutation, map[string]any{"u": w.Username, "p": w.Password}).MustOK(t, nil)
}
