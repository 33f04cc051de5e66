package auth

import (
	"errors"
	"strings"
	"testing"
)

// testArgon2 keeps hashing fast in tests.
var testArgon2 = Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1}

func TestPasswordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"beakprint", strings.Repeat("ж", 128), "with spaces and 🦜", "12345678"} {
		t.Run(pw[:min(len(pw), 12)], func(t *testing.T) {
			t.Parallel()
			h, err := hashPassword(testArgon2, pw)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
				t.Fatalf("hash %q is not a PHC argon2id string with the given parameters", h)
			}
			if strings.Contains(h, pw) {
				t.Fatalf("hash %q contains the beak print", h)
			}
			ok, err := verifyPassword(h, pw)
			if err != nil || !ok {
				t.Fatalf("verifyPassword(right) = %v, %v; want true, nil", ok, err)
			}
			for _, wrong := range []string{pw + "x", strings.ToUpper(pw), pw[:len(pw)-1], ""} {
				if wrong == pw {
					continue
				}
				ok, err := verifyPassword(h, wrong)
				if err != nil || ok {
					t.Fatalf("verifyPassword(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
		})
	}
}

func TestPasswordHashIsSalted(t *testing.T) {
	t.Parallel()
	a, err := hashPassword(testArgon2, "beakprint")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hashPassword(testArgon2, "beakprint")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of one beak print are equal (%q): no fresh salt", a)
	}
}

func TestPasswordVerifyUsesStoredParameters(t *testing.T) {
	t.Parallel()
	// A hash made with other parameters (e.g. before a cost change) still verifies.
	h, err := hashPassword(Argon2Params{MemoryKiB: 2048, Time: 2, Threads: 2}, "beakprint")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := verifyPassword(h, "beakprint"); err != nil || !ok {
		t.Fatalf("verifyPassword = %v, %v; want true, nil", ok, err)
	}
}

func TestPasswordVerifyMalformedHash(t *testing.T) {
	t.Parallel()
	good, err := hashPassword(testArgon2, "beakprint")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, m=…, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := map[string]string{
		"empty":            "",
		"plain text":       "beakprint",
		"bcrypt":           "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":          with(1, "argon2i"),
		"too few parts":    strings.Join(parts[:5], "$"),
		"too many parts":   good + "$extra",
		"other version":    with(2, "v=16"),
		"no version":       with(2, "19"),
		"params garbage":   with(3, "m=x,t=1,p=1"),
		"zero passes":      with(3, "m=1024,t=0,p=1"),
		"zero threads":     with(3, "m=1024,t=1,p=0"),
		"threads overflow": with(3, "m=1024,t=1,p=300"),
		"memory below 8×p": with(3, "m=7,t=1,p=1"),
		"memory absurd":    with(3, "m=4294967295,t=1,p=1"),
		"short salt":       with(4, "c2FsdA"),
		"short key":        with(5, "a2V5"),
		"salt not base64":  with(4, "!!!!"),
		"empty salt":       with(4, ""),
		"key not base64":   with(5, "!!!!"),
		"empty key":        with(5, ""),
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ok, err := verifyPassword(h, "beakprint")
			if ok || !errors.Is(err, errBadHash) {
				t.Fatalf("verifyPassword(%q) = %v, %v; want false, errBadHash", h, ok, err)
			}
		})
	}
}

// TestDefaultArgon2MeetsOWASP: R-SEC-5, R-AUTH-1 — the default cost is at least OWASP's
// argon2id recommendation (19 MiB, 2 passes, 1 lane), and hashes say so.
func TestDefaultArgon2MeetsOWASP(t *testing.T) {
	t.Parallel()
	p := DefaultArgon2
	if p.MemoryKiB < 19*1024 || p.Time < 2 || p.Threads < 1 {
		t.Fatalf("DefaultArgon2 = %+v, below OWASP's 19 MiB, t=2, p=1", p)
	}
	h, err := hashPassword(p, "beakprint")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q does not carry the default parameters", h)
	}
}
