package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
)

// clock is a settable time source safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// mustKey returns a signing key with the kid and its public half.
func mustKey(tb testing.TB, kid string) (signingKey, PublicKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return signingKey{id: kid, key: priv}, PublicKey{ID: kid, Key: pub}
}

// everyAccountAtVersion1 is a lookup for which every account exists, active, at version 1.
func everyAccountAtVersion1(context.Context, uuid.UUID) (AccountState, bool, error) {
	return AccountState{Version: 1, Active: true}, true, nil
}

// mustVerifier returns a verifier over the keys with fresh revocations and the clock; accounts
// the revocations do not know are looked up as active at version 1.
func mustVerifier(tb testing.TB, c *clock, keys ...PublicKey) (*Verifier, *Revocations) {
	tb.Helper()
	r := NewRevocationsWithClock(c.Now)
	v, err := NewVerifier(VerifierConfig{Keys: keys, Revocations: r, Clock: c.Now, Lookup: everyAccountAtVersion1})
	if err != nil {
		tb.Fatal(err)
	}
	return v, r
}

// mustSign signs arbitrary claims with the method and key, with the kid header when non-empty.
func mustSign(tb testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.Claims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// validClaims are the claims sign would issue at t0 for a one-hour token.
func validClaims(sub uuid.UUID) *Claims {
	return &Claims{
		Role: string(identity.Manager), Version: 1,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: TokenIssuer, Subject: sub.String(), Audience: jwt.ClaimStrings{TokenAudience},
			IssuedAt: jwt.NewNumericDate(t0), ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
		},
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func mustUnauthenticated(tb testing.TB, err error) *errs.Error {
	tb.Helper()
	e, ok := errs.As(err)
	if !ok || e.Code != errs.Unauthenticated {
		tb.Fatalf("error = %v, want an UNAUTHENTICATED *errs.Error", err)
	}
	return e
}

func TestTokenSignAndVerify(t *testing.T) {
	t.Parallel()
	c := &clock{now: t0}
	key, pub := mustKey(t, "k1")
	v, _ := mustVerifier(t, c, pub)
	acc := Account{ID: uuid.New(), Role: identity.Accountant, Version: 3}
	tok, exp, err := key.sign(acc, uuid.Nil, t0.Add(500*time.Millisecond), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Hour); !exp.Equal(want) || exp.Location() != time.UTC {
		t.Fatalf("expiry = %v, want %v in UTC", exp, want)
	}
	// The claims carry what R-AUTH-4 names.
	var claims Claims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Subject != acc.ID.String() || claims.Role != "ACCOUNTANT" || claims.Version != 3 ||
		claims.Issuer != TokenIssuer || len(claims.Audience) != 1 || claims.Audience[0] != TokenAudience ||
		claims.ExpiresAt == nil || !claims.ExpiresAt.Equal(exp) || claims.ID == "" {
		t.Fatalf("claims = %+v", claims)
	}
	header, _, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(header)
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil || h["alg"] != "EdDSA" || h["kid"] != "k1" {
		t.Fatalf("header = %s (%v), want alg EdDSA and kid k1", raw, err)
	}

	for _, at := range []time.Duration{0, 30 * time.Minute, time.Hour - time.Second} {
		c.Set(t0.Add(at))
		a, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("Verify at +%v: %v", at, err)
		}
		if a.AccountID != acc.ID || a.Role != identity.Accountant {
			t.Fatalf("Verify at +%v = %+v, want %s ACCOUNTANT", at, a, acc.ID)
		}
	}
	c.Set(t0.Add(time.Hour + time.Second))
	e := mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
	if !strings.Contains(e.Message, "expired") {
		t.Fatalf("expired token message = %q, want it to say expired", e.Message)
	}
}

func TestTokenVerifyRefuses(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	other, _ := mustKey(t, "k1") // same kid, another key
	sub := uuid.New()
	with := func(edit func(c *Claims)) *Claims {
		c := validClaims(sub)
		edit(c)
		return c
	}
	good := mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", validClaims(sub))
	goodHeader, goodRest, _ := strings.Cut(good, ".")
	goodPayload, goodSig, _ := strings.Cut(goodRest, ".")

	tests := map[string]string{
		"signed by another key with the same kid": mustSign(t, jwt.SigningMethodEdDSA, other.key, "k1", validClaims(sub)),
		"unknown kid":                         mustSign(t, jwt.SigningMethodEdDSA, key.key, "k2", validClaims(sub)),
		"no kid":                              mustSign(t, jwt.SigningMethodEdDSA, key.key, "", validClaims(sub)),
		"alg none":                            b64(`{"alg":"none","typ":"JWT","kid":"k1"}`) + "." + goodPayload + ".",
		"alg none via the library":            mustSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", validClaims(sub)),
		"alg none keeping the signature":      b64(`{"alg":"none","typ":"JWT","kid":"k1"}`) + "." + goodPayload + "." + goodSig,
		"HS256 with the public key as secret": mustSign(t, jwt.SigningMethodHS256, []byte(pub.Key), "k1", validClaims(sub)),
		"HS256 with the base64 public key":    mustSign(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub.Key)), "k1", validClaims(sub)),
		"payload tampered (role ADMIN)": goodHeader + "." + b64(`{"role":"ADMIN","ver":1,"iss":"ates-auth","sub":"`+sub.String()+
			`","aud":["ates"],"exp":`+jsonNum(t0.Add(time.Hour).Unix())+`,"iat":`+jsonNum(t0.Unix())+`}`) + "." + goodSig,
		"signature stripped":  goodHeader + "." + goodPayload + ".",
		"empty":               "",
		"garbage":             "not-a-token",
		"three garbage parts": "a.b.c",
		"header not JSON":     b64("{") + "." + goodPayload + "." + goodSig,
		"wrong issuer":        mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Issuer = "evil-auth" })),
		"no issuer":           mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Issuer = "" })),
		"wrong audience":      mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} })),
		"no audience":         mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Audience = nil })),
		"no expiry":           mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.ExpiresAt = nil })),
		"expired":             mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(t0.Add(-time.Second)) })),
		"issued in the future": mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) {
			c.IssuedAt = jwt.NewNumericDate(t0.Add(10 * time.Minute))
		})),
		"subject not a UUID": mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Subject = "admin" })),
		"no subject":         mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Subject = "" })),
		"unknown role":       mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Role = "ROOT" })),
		"lowercase role":     mustSign(t, jwt.SigningMethodEdDSA, key.key, "k1", with(func(c *Claims) { c.Role = "admin" })),
	}
	c := &clock{now: t0}
	v, _ := mustVerifier(t, c, pub)
	if _, err := v.Verify(good); err != nil {
		t.Fatalf("the untampered token is refused: %v", err)
	}
	for name, tok := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, err := v.Verify(tok)
			mustUnauthenticated(t, err)
			if a != (identity.Actor{}) {
				t.Fatalf("a refused token yields actor %+v", a)
			}
		})
	}
}

func jsonNum(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestTokenVerifierSeveralKeys(t *testing.T) {
	t.Parallel()
	k1, p1 := mustKey(t, "k1")
	k2, p2 := mustKey(t, "k2")
	c := &clock{now: t0}
	v, _ := mustVerifier(t, c, p1, p2)
	for _, k := range []signingKey{k1, k2} {
		tok, _, err := k.sign(Account{ID: uuid.New(), Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token of %s refused: %v", k.id, err)
		}
	}
}

func TestNewVerifierNeedsItsDependencies(t *testing.T) {
	t.Parallel()
	_, pub := mustKey(t, "k1")
	c := &clock{now: t0}
	if _, err := NewVerifier(VerifierConfig{Revocations: NewRevocations(), Clock: c.Now}); err == nil {
		t.Error("NewVerifier without keys: want an error")
	}
	if _, err := NewVerifier(VerifierConfig{Keys: []PublicKey{pub}, Clock: c.Now}); err == nil {
		t.Error("NewVerifier without revocations: want an error")
	}
	if _, err := NewVerifier(VerifierConfig{Keys: []PublicKey{pub}, Revocations: NewRevocations()}); err == nil {
		t.Error("NewVerifier without a clock: want an error")
	}
}

func TestJWKS(t *testing.T) {
	t.Parallel()
	_, p1 := mustKey(t, "k1")
	_, p2 := mustKey(t, "k2")
	raw, err := JWKS([]PublicKey{p1, p2})
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2: %s", len(set.Keys), raw)
	}
	for i, p := range []PublicKey{p1, p2} {
		k := set.Keys[i]
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || !ed25519.PublicKey(x).Equal(p.Key) {
			t.Errorf("key %d: x = %q does not decode to the public key (%v)", i, k["x"], err)
		}
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] != p.ID {
			t.Errorf("key %d = %v", i, k)
		}
		if _, has := k["d"]; has {
			t.Errorf("key %d publishes a private part", i)
		}
	}
	empty, err := JWKS(nil)
	if err != nil || string(empty) != `{"keys":[]}` {
		t.Fatalf("JWKS(nil) = %s, %v; want {\"keys\":[]}", empty, err)
	}
}

func TestRevocations(t *testing.T) {
	t.Parallel()
	type observe struct {
		version int64
		active  bool
	}
	tests := []struct {
		name     string
		observed []observe
		token    int64 // the token's account version
		// want is "" when the token is accepted, else a word of the refusal's message.
		want string
	}{
		{"unknown account is looked up (version 1, active)", nil, 1, ""},
		{"unknown account looked up refuses an older token", nil, 0, "changed"},
		{"active at the token's version", []observe{{1, true}}, 1, ""},
		{"deactivated account refused", []observe{{2, false}}, 1, "deactivated"},
		{"deactivated refuses even a token of the deactivation's version", []observe{{2, false}}, 2, "deactivated"},
		{"older version refused after a role change", []observe{{2, true}}, 1, "changed"},
		{"token of the current version accepted", []observe{{2, true}}, 2, ""},
		{"token newer than known accepted", []observe{{2, true}}, 3, ""},
		{"older observation after a newer one is ignored", []observe{{3, false}, {2, true}}, 3, "deactivated"},
		{"older role change after a newer one is ignored", []observe{{3, true}, {2, true}}, 2, "changed"},
		{"same version observed twice keeps the first", []observe{{2, true}, {2, false}}, 2, ""},
		{"newer observation wins", []observe{{2, true}, {3, true}}, 2, "changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, pub := mustKey(t, "k1")
			v, r := mustVerifier(t, &clock{now: t0}, pub)
			id := uuid.New()
			for _, o := range tt.observed {
				r.Observe(id, o.version, o.active)
			}
			// Another account's state never matters.
			r.Observe(uuid.New(), 99, false)
			tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: tt.token}, uuid.Nil, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(tok)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want accepted", err)
				}
				return
			}
			if e := mustUnauthenticated(t, err); !strings.Contains(e.Message, tt.want) {
				t.Fatalf("message %q, want it to contain %q", e.Message, tt.want)
			}
		})
	}
}

// mustEnvelope builds an event as the auth context publishes it.
func mustEnvelope(tb testing.TB, name string, data any) event.Envelope {
	tb.Helper()
	e, err := event.New(context.Background(), Producer, name, 1, t0, data)
	if err != nil {
		tb.Fatal(err)
	}
	if err := event.MustDefaultRegistry().Validate(e); err != nil {
		tb.Fatalf("the test's event is invalid: %v", err)
	}
	return e
}

func TestRevocationsApplyEvent(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	v, r := mustVerifier(t, &clock{now: t0}, pub)
	id := uuid.New()
	data := func(version int64, active bool, role identity.Role) AccountData {
		return AccountData{AccountID: id.String(), Username: "popug", Email: "popug@uberpopug.com", FullName: "Popug",
			Role: string(role), Active: active, Version: version, ChangedAt: t0}
	}
	tokenAt := func(version int64) string {
		tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: version}, uuid.Nil, t0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	verify := func(version int64) error { _, err := v.Verify(tokenAt(version)); return err }

	apply := func(e event.Envelope) {
		t.Helper()
		if err := r.ApplyEvent(e); err != nil {
			t.Fatalf("ApplyEvent(%s): %v", e.Name, err)
		}
	}
	apply(mustEnvelope(t, EventAccountCreated, data(1, true, identity.Worker)))
	if err := verify(1); err != nil {
		t.Fatalf("after account.created: %v", err)
	}
	// Business events carry no full state; they change nothing here.
	apply(mustEnvelope(t, EventAccountRoleChanged, RoleChangedData{AccountID: id.String(), OldRole: "WORKER", NewRole: "MANAGER", Version: 2, ChangedAt: t0}))
	apply(mustEnvelope(t, EventAccountDeactivated, DeactivatedData{AccountID: id.String(), Version: 3, ChangedAt: t0}))
	if err := verify(1); err != nil {
		t.Fatalf("after business events only: %v", err)
	}
	apply(mustEnvelope(t, EventAccountUpdated, data(2, true, identity.Manager)))
	mustUnauthenticated(t, verify(1))
	if err := verify(2); err != nil {
		t.Fatalf("token of version 2 after the role change: %v", err)
	}
	apply(mustEnvelope(t, EventAccountUpdated, data(3, false, identity.Manager)))
	mustUnauthenticated(t, verify(3))
	// A late, older account.updated does not bring the account back.
	apply(mustEnvelope(t, EventAccountUpdated, data(2, true, identity.Manager)))
	mustUnauthenticated(t, verify(3))

	// Undecodable data is an error, not a silent change.
	bad := mustEnvelope(t, EventAccountUpdated, data(4, true, identity.Worker))
	bad.Data = json.RawMessage(`{"accountId":"not-a-uuid","version":4,"active":true}`)
	if err := r.ApplyEvent(bad); err == nil {
		t.Fatal("ApplyEvent with a malformed accountId: want an error")
	}
	bad.Data = json.RawMessage(`[1,2]`)
	if err := r.ApplyEvent(bad); err == nil {
		t.Fatal("ApplyEvent with data that is not an object: want an error")
	}
	mustUnauthenticated(t, verify(3))
}

// TestRevocationsConcurrent lets the race detector watch Observe and Verify together.
func TestRevocationsConcurrent(t *testing.T) {
	t.Parallel()
	key, pub := mustKey(t, "k1")
	v, r := mustVerifier(t, &clock{now: t0}, pub)
	id := uuid.New()
	tok, _, err := key.sign(Account{ID: id, Role: identity.Worker, Version: 1}, uuid.Nil, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				r.Observe(id, int64(i*50+j+1), true)
				_, _ = v.Verify(tok)
			}
		})
	}
	wg.Wait()
	r.Observe(id, 1000, false)
	mustUnauthenticated(t, func() error { _, err := v.Verify(tok); return err }())
}
