package auth_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// start is the fake clock's first instant.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lightArgon2 keeps hashing fast in tests.
var lightArgon2 = auth.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}

var schemaMu sync.Mutex

// harness is an auth service on a fresh real database.
type harness struct {
	db       *storage.DB
	client   *authdb.Client
	svc      *auth.Service
	clock    *fakeClock
	notified atomic.Int64
	opts     []func(*auth.Config)
	// logs holds the service's log lines.
	logs *syncBuffer
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// MustService returns an auth service over db, migrated by auth.Migrate, with a fake clock,
// light Argon2 parameters and the config edits opts. A PostgreSQL pool is capped at 8
// connections: the server's are shared by every test running on it.
func MustService(tb testing.TB, db *storage.DB, opts ...func(*auth.Config)) *harness {
	tb.Helper()
	if db.Dialect == dialect.Postgres {
		db.SQL.SetMaxOpenConns(8)
		db.SQL.SetMaxIdleConns(8)
	}
	client := authdb.NewClient(authdb.Driver(db.Driver()))
	// Ent's migration writes the generated package-level table list: one at a time.
	schemaMu.Lock()
	err := db.Migrate(context.Background(), func(ctx context.Context) error { return auth.Migrate(ctx, db) })
	schemaMu.Unlock()
	if err != nil {
		tb.Fatalf("creating the auth schema: %v", err)
	}
	h := &harness{db: db, client: client, clock: &fakeClock{now: start}, opts: opts, logs: &syncBuffer{}}
	h.svc = h.mustNew(tb)
	return h
}

// mustNew builds another service instance on the harness's database.
func (h *harness) mustNew(tb testing.TB) *auth.Service {
	tb.Helper()
	w, err := outbox.NewWriter(h.db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		tb.Fatal(err)
	}
	cfg := auth.Config{
		Client: h.client, Outbox: w, Clock: h.clock.Now, Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
		Notify: func() { h.notified.Add(1) }, Argon2: lightArgon2,
	}
	for _, o := range h.opts {
		o(&cfg)
	}
	svc, err := auth.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("auth.New: %v", err)
	}
	return svc
}

// mustVerifier returns a verifier over the service's keys, on the harness's clock.
func (h *harness) mustVerifier(tb testing.TB, svc *auth.Service) (*auth.Verifier, *auth.Revocations) {
	tb.Helper()
	keys, err := svc.PublicKeys(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	r := auth.NewRevocationsWithClock(h.clock.Now)
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: r, Clock: h.clock.Now, Lookup: svc.LookupAccount})
	if err != nil {
		tb.Fatal(err)
	}
	return v, r
}

// outboxRow is one stored event.
type outboxRow struct {
	EventID, Name, Key string
	Version            int
	Envelope           event.Envelope
}

// mustOutbox returns every event in outbox_events, in insertion order, each validated again.
func (h *harness) mustOutbox(tb testing.TB) []outboxRow {
	tb.Helper()
	rows, err := h.db.SQL.Query(`SELECT event_id, name, version, aggregate_key, payload FROM outbox_events ORDER BY id`)
	if err != nil {
		tb.Fatalf("reading outbox_events: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload string
		if err := rows.Scan(&r.EventID, &r.Name, &r.Version, &r.Key, &payload); err != nil {
			tb.Fatal(err)
		}
		if r.Envelope, err = event.MustDefaultRegistry().Parse([]byte(payload)); err != nil {
			tb.Fatalf("stored event %s is invalid: %v", r.Name, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

func (h *harness) mustCountWhere(tb testing.TB, table, where string) int {
	tb.Helper()
	var n int
	if err := h.db.SQL.QueryRow(`SELECT COUNT(*) FROM ` + table + ` WHERE ` + where).Scan(&n); err != nil {
		tb.Fatalf("counting %s: %v", table, err)
	}
	return n
}

func (h *harness) mustCount(tb testing.TB, table string) int {
	tb.Helper()
	var n int
	if err := h.db.SQL.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		tb.Fatalf("counting %s: %v", table, err)
	}
	return n
}

// names returns the events' names.
func names(rows []outboxRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Name
	}
	return out
}

func decode[T any](tb testing.TB, e event.Envelope) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

func newAccount(username string, role identity.Role) auth.NewAccount {
	return auth.NewAccount{
		Username: username, Password: "beak-" + username, FullName: "Popug " + username,
		Email: username + "@uberpopug.com", Role: role,
	}
}

// mustErr asserts err is an *errs.Error with the code (and field, when given).
func mustErr(tb testing.TB, err error, code errs.Code, field string) *errs.Error {
	tb.Helper()
	e, ok := errs.As(err)
	if !ok {
		tb.Fatalf("error = %v, want code %s", err, code)
	}
	if e.Code != code || e.Field != field {
		tb.Fatalf("error = {%s, field %q, %q}, want {%s, field %q}", e.Code, e.Field, e.Message, code, field)
	}
	return e
}

// admin bootstraps an admin and returns it as an actor.
func (h *harness) admin(tb testing.TB) identity.Actor {
	tb.Helper()
	ctx := context.Background()
	if _, _, err := h.svc.Bootstrap(ctx, "root", "root-beak-print"); err != nil {
		tb.Fatal(err)
	}
	s, err := h.svc.Login(ctx, "root", "root-beak-print", "")
	if err != nil {
		tb.Fatal(err)
	}
	return identity.Actor{AccountID: s.Account.ID, Role: identity.Admin}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	if _, err := auth.New(context.Background(), auth.Config{}); err == nil {
		t.Fatal("auth.New with no dependencies: want an error")
	}
}

func TestSignUp(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := event.WithCorrelationID(context.Background(), "corr-signup")
		n := newAccount("popug", identity.Admin) // the role is ignored: sign-up makes a WORKER
		s, err := h.svc.SignUp(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		a := s.Account
		if a.ID == uuid.Nil || a.Username != "popug" || a.Email != "popug@uberpopug.com" || a.FullName != "Popug popug" ||
			a.Role != identity.Worker || !a.Active || a.Version != 1 || !a.CreatedAt.Equal(start) {
			t.Fatalf("account = %+v", a)
		}
		if s.Token == "" || !s.ExpiresAt.Equal(start.Add(auth.DefaultTokenTTL)) {
			t.Fatalf("session token %q expiring %v, want a token expiring %v", s.Token, s.ExpiresAt, start.Add(time.Hour))
		}
		v, _ := h.mustVerifier(t, h.svc)
		if actor, err := v.Verify(s.Token); err != nil || actor != (identity.Actor{AccountID: a.ID, Role: identity.Worker}) {
			t.Fatalf("Verify(sign-up token) = %+v, %v", actor, err)
		}

		rows := h.mustOutbox(t)
		if len(rows) != 1 {
			t.Fatalf("outbox = %v, want one account.created", names(rows))
		}
		r := rows[0]
		e := r.Envelope
		if r.Name != auth.EventAccountCreated || r.Version != 1 || r.Key != a.ID.String() || r.EventID != e.ID {
			t.Fatalf("outbox row = %+v", r)
		}
		if _, err := uuid.Parse(e.ID); err != nil || e.Name != "account.created" || e.Version != 1 ||
			!e.Time.Equal(start) || e.Producer != "auth" || e.CorrelationID != "corr-signup" {
			t.Fatalf("envelope = %+v", e)
		}
		d := decode[auth.AccountData](t, e)
		want := auth.AccountData{AccountID: a.ID.String(), Username: "popug", Email: "popug@uberpopug.com",
			FullName: "Popug popug", Role: "WORKER", Active: true, Version: 1, ChangedAt: start}
		if !d.ChangedAt.Equal(want.ChangedAt) {
			t.Fatalf("changedAt = %v, want %v", d.ChangedAt, want.ChangedAt)
		}
		d.ChangedAt = want.ChangedAt
		if d != want {
			t.Fatalf("data = %+v, want %+v", d, want)
		}
		// The beak print is stored only as an argon2id hash and never travels in an event.
		var hash string
		if err := db.SQL.QueryRow(`SELECT password_hash FROM accounts`).Scan(&hash); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, n.Password) {
			t.Fatalf("stored credential %q is not an argon2id hash", hash)
		}
		if strings.Contains(string(e.Data), n.Password) || strings.Contains(string(e.Data), "argon2") {
			t.Fatalf("the event carries the credential: %s", e.Data)
		}
		if got := h.notified.Load(); got != 1 {
			t.Fatalf("Notify called %d times, want 1", got)
		}
	})
}

func TestSignUpRefusesDuplicatesAndInvalidInput(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		if _, err := h.svc.SignUp(ctx, newAccount("popug", "")); err != nil {
			t.Fatal(err)
		}
		dup := newAccount("popug", "")
		dup.Email = "other@uberpopug.com"
		_, err := h.svc.SignUp(ctx, dup)
		if e := mustErr(t, err, errs.Invalid, "username"); !strings.Contains(e.Message, "taken") {
			t.Fatalf("message = %q, want it to say the username is taken", e.Message)
		}
		bad := newAccount("x", "")
		_, err = h.svc.SignUp(ctx, bad)
		mustErr(t, err, errs.Invalid, "username")
		if n := h.mustCount(t, "accounts"); n != 1 {
			t.Fatalf("%d accounts stored, want 1", n)
		}
		if rows := h.mustOutbox(t); len(rows) != 1 {
			t.Fatalf("outbox = %v, want only the first account.created", names(rows))
		}
		if got := h.notified.Load(); got != 1 {
			t.Fatalf("Notify called %d times, want 1 (only for the committed sign-up)", got)
		}
		// The service still works after the refused insert (the transaction was rolled back).
		if _, err := h.svc.SignUp(ctx, newAccount("popug2", "")); err != nil {
			t.Fatalf("sign-up after a refused one: %v", err)
		}
	})
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		before := len(h.mustOutbox(t))
		for _, role := range []identity.Role{identity.Manager, identity.Accountant, identity.Worker} {
			other := identity.Actor{AccountID: uuid.New(), Role: role}
			_, err := h.svc.CreateAccount(ctx, other, newAccount("by-"+strings.ToLower(string(role)), identity.Worker))
			mustErr(t, err, errs.Forbidden, "")
		}
		if got := len(h.mustOutbox(t)); got != before {
			t.Fatalf("refused creations stored %d events", got-before)
		}
		for _, role := range identity.Roles {
			name := "new-" + strings.ToLower(string(role))
			a, err := h.svc.CreateAccount(ctx, admin, newAccount(name, role))
			if err != nil {
				t.Fatalf("creating a %s: %v", role, err)
			}
			if a.Role != role || a.Username != name || !a.Active {
				t.Fatalf("created %+v, want an active %s", a, role)
			}
			if _, err := h.svc.Login(ctx, name, "beak-"+name, ""); err != nil {
				t.Fatalf("the created %s cannot log in: %v", role, err)
			}
		}
		_, err := h.svc.CreateAccount(ctx, admin, newAccount("rootish", "ROOT"))
		mustErr(t, err, errs.Invalid, "role")
		rows := h.mustOutbox(t)[before:]
		if len(rows) != 4 {
			t.Fatalf("outbox got %v, want 4 account.created", names(rows))
		}
		for i, r := range rows {
			d := decode[auth.AccountData](t, r.Envelope)
			if r.Name != auth.EventAccountCreated || d.Role != string(identity.Roles[i]) {
				t.Fatalf("event %d = %s with role %s, want account.created with %s", i, r.Name, d.Role, identity.Roles[i])
			}
		}
	})
}

func TestChangeRole(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		s, err := h.svc.SignUp(ctx, newAccount("popug", ""))
		if err != nil {
			t.Fatal(err)
		}
		id := s.Account.ID
		before := len(h.mustOutbox(t))
		h.clock.Advance(time.Minute)
		changedAt := h.clock.Now()

		a, err := h.svc.ChangeRole(ctx, admin, id, identity.Accountant)
		if err != nil {
			t.Fatal(err)
		}
		if a.Role != identity.Accountant || a.Version != 2 || !a.Active || !a.UpdatedAt.Equal(changedAt) {
			t.Fatalf("changed account = %+v", a)
		}
		if got, err := h.svc.Get(ctx, id); err != nil || got.Role != identity.Accountant || got.Version != 2 {
			t.Fatalf("stored account = %+v, %v", got, err)
		}
		rows := h.mustOutbox(t)[before:]
		if got := names(rows); len(got) != 2 || got[0] != auth.EventAccountUpdated || got[1] != auth.EventAccountRoleChanged {
			t.Fatalf("events = %v, want account.updated then account.role_changed", got)
		}
		up := decode[auth.AccountData](t, rows[0].Envelope)
		if up.AccountID != id.String() || up.Role != "ACCOUNTANT" || up.Version != 2 || !up.Active || up.Username != "popug" {
			t.Fatalf("account.updated data = %+v", up)
		}
		rc := decode[auth.RoleChangedData](t, rows[1].Envelope)
		if rc.AccountID != id.String() || rc.OldRole != "WORKER" || rc.NewRole != "ACCOUNTANT" || rc.Version != 2 || !rc.ChangedAt.Equal(changedAt) {
			t.Fatalf("account.role_changed data = %+v", rc)
		}
		for _, r := range rows {
			if r.Key != id.String() || !r.Envelope.Time.Equal(changedAt) {
				t.Fatalf("event %s keyed %q at %v, want %s at %v", r.Name, r.Key, r.Envelope.Time, id, changedAt)
			}
		}

		// The same role again changes nothing and publishes nothing.
		a, err = h.svc.ChangeRole(ctx, admin, id, identity.Accountant)
		if err != nil || a.Version != 2 || a.Role != identity.Accountant {
			t.Fatalf("same role: %+v, %v; want version 2 unchanged", a, err)
		}
		if got := len(h.mustOutbox(t)); got != before+2 {
			t.Fatalf("same role stored %d more events", got-before-2)
		}

		// Refusals.
		_, err = h.svc.ChangeRole(ctx, identity.Actor{AccountID: id, Role: identity.Manager}, id, identity.Admin)
		mustErr(t, err, errs.Forbidden, "")
		_, err = h.svc.ChangeRole(ctx, admin, admin.AccountID, identity.Worker)
		mustErr(t, err, errs.Conflict, "")
		_, err = h.svc.ChangeRole(ctx, admin, uuid.New(), identity.Worker)
		mustErr(t, err, errs.NotFound, "")
		_, err = h.svc.ChangeRole(ctx, admin, id, "ROOT")
		mustErr(t, err, errs.Invalid, "role")
		if got, _ := h.svc.Get(ctx, admin.AccountID); got.Role != identity.Admin {
			t.Fatalf("the admin's role became %s", got.Role)
		}
		if got := len(h.mustOutbox(t)); got != before+2 {
			t.Fatalf("refused changes stored %d events", got-before-2)
		}
	})
}

func TestDeactivate(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		s, err := h.svc.SignUp(ctx, newAccount("popug", ""))
		if err != nil {
			t.Fatal(err)
		}
		id := s.Account.ID
		before := len(h.mustOutbox(t))

		_, err = h.svc.Deactivate(ctx, identity.Actor{AccountID: id, Role: identity.Worker}, id)
		mustErr(t, err, errs.Forbidden, "")
		_, err = h.svc.Deactivate(ctx, admin, admin.AccountID)
		mustErr(t, err, errs.Conflict, "")
		_, err = h.svc.Deactivate(ctx, admin, uuid.New())
		mustErr(t, err, errs.NotFound, "")

		a, err := h.svc.Deactivate(ctx, admin, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Active || a.Version != 2 || a.Role != identity.Worker {
			t.Fatalf("deactivated account = %+v", a)
		}
		rows := h.mustOutbox(t)[before:]
		if got := names(rows); len(got) != 2 || got[0] != auth.EventAccountUpdated || got[1] != auth.EventAccountDeactivated {
			t.Fatalf("events = %v, want account.updated then account.deactivated", got)
		}
		if up := decode[auth.AccountData](t, rows[0].Envelope); up.Active || up.Version != 2 || up.AccountID != id.String() {
			t.Fatalf("account.updated data = %+v", up)
		}
		if d := decode[auth.DeactivatedData](t, rows[1].Envelope); d.AccountID != id.String() || d.Version != 2 {
			t.Fatalf("account.deactivated data = %+v", d)
		}

		// Deactivating again changes nothing.
		a, err = h.svc.Deactivate(ctx, admin, id)
		if err != nil || a.Active || a.Version != 2 {
			t.Fatalf("second deactivation = %+v, %v", a, err)
		}
		if got := len(h.mustOutbox(t)); got != before+2 {
			t.Fatalf("second deactivation stored %d more events", got-before-2)
		}

		// R-AUTH-5: no login, even with the right beak print.
		_, err = h.svc.Login(ctx, "popug", "beak-popug", "")
		if e := mustErr(t, err, errs.Unauthenticated, ""); !strings.Contains(e.Message, "deactivated") {
			t.Fatalf("message = %q", e.Message)
		}
		// And a gateway seeded from the database refuses the old token.
		v, r := h.mustVerifier(t, h.svc)
		if err := h.svc.SeedRevocations(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(s.Token)
		mustErr(t, err, errs.Unauthenticated, "")
	})
}

func TestSeedRevocations(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t)
		old, err := h.svc.SignUp(ctx, newAccount("changed", ""))
		if err != nil {
			t.Fatal(err)
		}
		kept, err := h.svc.SignUp(ctx, newAccount("kept", ""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.svc.ChangeRole(ctx, admin, old.Account.ID, identity.Manager); err != nil {
			t.Fatal(err)
		}
		fresh, err := h.svc.Login(ctx, "changed", "beak-changed", "")
		if err != nil {
			t.Fatal(err)
		}
		v, r := h.mustVerifier(t, h.svc)
		if err := h.svc.SeedRevocations(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(old.Token)
		mustErr(t, err, errs.Unauthenticated, "")
		if a, err := v.Verify(fresh.Token); err != nil || a.Role != identity.Manager {
			t.Fatalf("token after the role change = %+v, %v; want a MANAGER", a, err)
		}
		if _, err := v.Verify(kept.Token); err != nil {
			t.Fatalf("an unchanged account's token is refused: %v", err)
		}
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		up, err := h.svc.SignUp(ctx, newAccount("popug", ""))
		if err != nil {
			t.Fatal(err)
		}
		h.clock.Advance(time.Hour)
		s, err := h.svc.Login(ctx, "popug", "beak-popug", "")
		if err != nil {
			t.Fatal(err)
		}
		if s.Account.ID != up.Account.ID || !s.ExpiresAt.Equal(start.Add(2*time.Hour)) {
			t.Fatalf("session = %+v", s)
		}
		v, _ := h.mustVerifier(t, h.svc)
		if a, err := v.Verify(s.Token); err != nil || a.AccountID != up.Account.ID || a.Role != identity.Worker {
			t.Fatalf("Verify = %+v, %v", a, err)
		}
		// The sign-up token, issued an hour ago, has just expired.
		h.clock.Advance(time.Second)
		_, err = v.Verify(up.Token)
		mustErr(t, err, errs.Unauthenticated, "")

		for _, tc := range []struct{ user, pass string }{
			{"popug", "wrong-beak"}, {"popug", ""}, {"popug", "BEAK-POPUG"}, {"nobody", "beak-popug"}, {"", ""},
		} {
			_, err := h.svc.Login(ctx, tc.user, tc.pass, "")
			if e := mustErr(t, err, errs.Unauthenticated, ""); e.Message != "wrong username or beak print" {
				t.Fatalf("Login(%q, %q) message = %q; want the same message for unknown users and wrong beak prints", tc.user, tc.pass, e.Message)
			}
		}
		if n := h.mustCount(t, "outbox_events"); n != 1 {
			t.Fatalf("logins stored events: %d rows", n)
		}
	})
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		for _, u := range []string{"popug", "bystander"} {
			if _, err := h.svc.SignUp(ctx, newAccount(u, "")); err != nil {
				t.Fatal(err)
			}
		}
		wrong := func(n int) {
			t.Helper()
			for i := range n {
				_, err := h.svc.Login(ctx, "popug", "wrong-beak", "")
				if e := mustErr(t, err, errs.Unauthenticated, ""); e.Message != "wrong username or beak print" {
					t.Fatalf("failure %d: %q", i+1, e.Message)
				}
				h.clock.Advance(time.Second)
			}
		}
		blocked := func(wantRetry int) {
			t.Helper()
			_, err := h.svc.Login(ctx, "popug", "beak-popug", "")
			e := mustErr(t, err, errs.Unauthenticated, "")
			if !strings.Contains(e.Message, "too many failed logins") || e.Meta["retryAfter"] != wantRetry {
				t.Fatalf("blocked login = %q %v, want too many failed logins with retryAfter %d", e.Message, e.Meta, wantRetry)
			}
		}
		login := func() {
			t.Helper()
			if _, err := h.svc.Login(ctx, "popug", "beak-popug", ""); err != nil {
				t.Fatalf("right beak print refused: %v", err)
			}
		}

		wrong(4)
		login() // four failures do not block, and success clears them
		wrong(4)
		login()
		wrong(5) // the fifth failure blocks for a minute, even the right beak print
		h.clock.Advance(-time.Second)
		blocked(60)
		// Another username is not affected.
		if _, err := h.svc.Login(ctx, "bystander", "beak-bystander", ""); err != nil {
			t.Fatalf("another username is throttled: %v", err)
		}
		h.clock.Advance(59 * time.Second)
		blocked(1)
		h.clock.Advance(time.Second)
		wrong(1) // one more failure in the window doubles the block
		h.clock.Advance(-time.Second)
		blocked(120)
		h.clock.Advance(2 * time.Minute)
		login()
		// Success cleared the record: one failure no longer blocks.
		wrong(1)
		login()
		if n := h.mustCountWhere(t, "login_limits", "key LIKE 'p:%'"); n != 0 {
			t.Fatalf("%d username-and-client throttle records remain after a successful login", n)
		}
	})
}

func TestLoginThrottleUnknownUsername(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		for range 5 {
			_, err := h.svc.Login(ctx, "ghost", "whatever1", "")
			mustErr(t, err, errs.Unauthenticated, "")
		}
		_, err := h.svc.Login(ctx, "ghost", "whatever1", "")
		if e := mustErr(t, err, errs.Unauthenticated, ""); !strings.Contains(e.Message, "too many failed logins") {
			t.Fatalf("sixth login for an unknown username: %q, want throttled", e.Message)
		}
		// Signing the name up later does not inherit a way around the block.
		if _, err := h.svc.SignUp(ctx, newAccount("ghost", "")); err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.Login(ctx, "ghost", "beak-ghost", "")
		mustErr(t, err, errs.Unauthenticated, "")
		h.clock.Advance(time.Minute)
		if _, err := h.svc.Login(ctx, "ghost", "beak-ghost", ""); err != nil {
			t.Fatalf("after the block: %v", err)
		}
	})
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		created, password, err := h.svc.Bootstrap(ctx, "", "")
		if err != nil || !created {
			t.Fatalf("Bootstrap = %v, %v; want created", created, err)
		}
		if len(password) < auth.MinPasswordLen {
			t.Fatalf("generated password %q is too short", password)
		}
		s, err := h.svc.Login(ctx, "admin", password, "")
		if err != nil {
			t.Fatalf("the generated password does not log in: %v", err)
		}
		if s.Account.Role != identity.Admin || s.Account.Username != "admin" {
			t.Fatalf("bootstrap account = %+v", s.Account)
		}
		created, password, err = h.svc.Bootstrap(ctx, "", "")
		if err != nil || created || password != "" {
			t.Fatalf("second Bootstrap = %v, %q, %v; want a no-op", created, password, err)
		}
		created, _, err = h.svc.Bootstrap(ctx, "other", "other-beak-print")
		if err != nil || created {
			t.Fatalf("Bootstrap on a non-empty database = %v, %v; want a no-op", created, err)
		}
		if n := h.mustCount(t, "accounts"); n != 1 {
			t.Fatalf("%d accounts, want the one admin", n)
		}
		if rows := h.mustOutbox(t); len(rows) != 1 || rows[0].Name != auth.EventAccountCreated {
			t.Fatalf("outbox = %v, want one account.created", names(rows))
		}
	})
}

func TestBootstrapWithConfiguredCredentials(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite))
	ctx := context.Background()
	created, password, err := h.svc.Bootstrap(ctx, "chief", "chief-beak-print")
	if err != nil || !created || password != "chief-beak-print" {
		t.Fatalf("Bootstrap = %v, %q, %v", created, password, err)
	}
	if s, err := h.svc.Login(ctx, "chief", "chief-beak-print", ""); err != nil || s.Account.Role != identity.Admin {
		t.Fatalf("Login = %+v, %v", s.Account, err)
	}
	// An invalid configured username is an error, not a silent admin-less start.
	h2 := MustService(t, storagetest.MustOpen(t, dialect.SQLite))
	if created, _, err := h2.svc.Bootstrap(ctx, "Chief Popug", "chief-beak-print"); err == nil || created {
		t.Fatalf("Bootstrap with an invalid username = %v, %v; want an error", created, err)
	}
}

func TestSigningKeyPersists(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		s, err := h.svc.SignUp(ctx, newAccount("popug", ""))
		if err != nil {
			t.Fatal(err)
		}
		second := h.mustNew(t) // a restart, or another gateway on the same database
		keys1, err := h.svc.PublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys2, err := second.PublicKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys1) != 1 || len(keys2) != 1 || keys1[0].ID != keys2[0].ID || !keys1[0].Key.Equal(keys2[0].Key) {
			t.Fatalf("keys differ between instances: %v / %v", keys1, keys2)
		}
		v, _ := h.mustVerifier(t, second)
		if a, err := v.Verify(s.Token); err != nil || a.AccountID != s.Account.ID {
			t.Fatalf("the second instance refuses the first one's token: %+v, %v", a, err)
		}
		s2, err := second.Login(ctx, "popug", "beak-popug", "")
		if err != nil {
			t.Fatal(err)
		}
		v1, _ := h.mustVerifier(t, h.svc)
		if _, err := v1.Verify(s2.Token); err != nil {
			t.Fatalf("the first instance refuses the second one's token: %v", err)
		}
		if n := h.mustCount(t, "signing_keys"); n != 1 {
			t.Fatalf("%d signing keys stored, want 1", n)
		}
	})
}

func TestList(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		admin := h.admin(t) // "root"
		want := []string{"root"}
		for i, role := range []identity.Role{identity.Worker, identity.Manager, identity.Worker, identity.Accountant, identity.Worker} {
			name := "popug" + string(rune('a'+i))
			if _, err := h.svc.CreateAccount(ctx, admin, newAccount(name, role)); err != nil {
				t.Fatal(err)
			}
			want = append(want, name)
		}

		var got []string
		var after int64
		for pageNo := 0; ; pageNo++ {
			p, err := h.svc.List(ctx, admin, page.Request{First: 4, After: after}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalCount != 6 || p.HasPrev != (pageNo > 0) || len(p.Items) != len(p.Keys) {
				t.Fatalf("page %d: total %d, hasPrev %v, %d items / %d keys", pageNo, p.TotalCount, p.HasPrev, len(p.Items), len(p.Keys))
			}
			for _, a := range p.Items {
				got = append(got, a.Username)
			}
			if wantNext := pageNo == 0; p.HasNext != wantNext {
				t.Fatalf("page %d: hasNext %v, want %v", pageNo, p.HasNext, wantNext)
			}
			if !p.HasNext {
				break
			}
			after = p.Keys[len(p.Keys)-1]
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("listed %v, want %v in creation order", got, want)
		}

		worker := identity.Worker
		p, err := h.svc.List(ctx, admin, page.Request{First: 2}, &worker)
		if err != nil {
			t.Fatal(err)
		}
		if p.TotalCount != 3 || !p.HasNext || len(p.Items) != 2 || p.Items[0].Username != "popuga" || p.Items[1].Username != "popugc" {
			t.Fatalf("workers page 1 = %+v", p)
		}
		p2, err := h.svc.List(ctx, admin, page.Request{First: 2, After: p.Keys[1]}, &worker)
		if err != nil {
			t.Fatal(err)
		}
		if p2.TotalCount != 3 || p2.HasNext || len(p2.Items) != 1 || p2.Items[0].Username != "popuge" {
			t.Fatalf("workers page 2 = %+v", p2)
		}
		for _, a := range append(p.Items, p2.Items...) {
			if a.Role != identity.Worker {
				t.Fatalf("role filter let %s (%s) through", a.Username, a.Role)
			}
		}
		admins := identity.Admin
		if p, err := h.svc.List(ctx, admin, page.Request{First: 20}, &admins); err != nil || p.TotalCount != 1 || len(p.Items) != 1 || p.HasNext {
			t.Fatalf("admins = %+v, %v", p, err)
		}
		if p, err := h.svc.List(ctx, admin, page.Request{First: 0}, nil); err != nil || len(p.Items) != 0 || !p.HasNext || p.TotalCount != 6 {
			t.Fatalf("first 0 = %+v, %v", p, err)
		}
		for _, role := range []identity.Role{identity.Manager, identity.Accountant, identity.Worker} {
			_, err := h.svc.List(ctx, identity.Actor{AccountID: uuid.New(), Role: role}, page.Request{First: 20}, nil)
			mustErr(t, err, errs.Forbidden, "")
		}
	})
}

func TestGet(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite))
	ctx := context.Background()
	s, err := h.svc.SignUp(ctx, newAccount("popug", ""))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := h.svc.Get(ctx, s.Account.ID); err != nil || a.Username != "popug" {
		t.Fatalf("Get = %+v, %v", a, err)
	}
	_, err = h.svc.Get(ctx, uuid.New())
	mustErr(t, err, errs.NotFound, "")
}

// TestServiceHashesWithOWASPDefaults: R-SEC-5 — a service configured without Argon2
// parameters stores argon2id hashes with OWASP's parameters.
func TestServiceHashesWithOWASPDefaults(t *testing.T) {
	t.Parallel()
	h := MustService(t, storagetest.MustOpen(t, dialect.SQLite), func(c *auth.Config) { c.Argon2 = auth.Argon2Params{} })
	if _, err := h.svc.SignUp(context.Background(), newAccount("popug", "")); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := h.db.SQL.QueryRow(`SELECT password_hash FROM accounts`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("stored hash %q, want argon2id with m=19456,t=2,p=1", hash)
	}
}
