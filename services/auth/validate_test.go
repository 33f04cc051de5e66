package auth

import (
	"strings"
	"testing"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

// validAccount is a NewAccount that passes every rule of R-AUTH-1.
func validAccount() NewAccount {
	return NewAccount{
		Username: "popug", Password: "beakprint", FullName: "Popug Popugovich",
		Email: "popug@uberpopug.com", Role: identity.Worker,
	}
}

func TestNewAccountValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(n *NewAccount)
		// field is the offending field, "" when the account is valid.
		field string
	}{
		{"valid", func(n *NewAccount) {}, ""},

		// Usernames: 3–32 chars of [a-z0-9_.-] (R-AUTH-1).
		{"username 2 chars", func(n *NewAccount) { n.Username = "ab" }, "username"},
		{"username 3 chars", func(n *NewAccount) { n.Username = "abc" }, ""},
		{"username 32 chars", func(n *NewAccount) { n.Username = strings.Repeat("a", 32) }, ""},
		{"username 33 chars", func(n *NewAccount) { n.Username = strings.Repeat("a", 33) }, "username"},
		{"username empty", func(n *NewAccount) { n.Username = "" }, "username"},
		{"username uppercase", func(n *NewAccount) { n.Username = "Popug" }, "username"},
		{"username space inside", func(n *NewAccount) { n.Username = "po pug" }, "username"},
		{"username leading space", func(n *NewAccount) { n.Username = " popug" }, "username"},
		{"username trailing newline", func(n *NewAccount) { n.Username = "popug\n" }, "username"},
		{"username allowed punctuation", func(n *NewAccount) { n.Username = "po_p.u-g9" }, ""},
		{"username only punctuation", func(n *NewAccount) { n.Username = "_.-" }, ""},
		{"username at sign", func(n *NewAccount) { n.Username = "po@pug" }, "username"},
		{"username plus", func(n *NewAccount) { n.Username = "po+pug" }, "username"},
		{"username non-ASCII letters", func(n *NewAccount) { n.Username = "попуг" }, "username"},
		{"username 3 multibyte runes", func(n *NewAccount) { n.Username = "ééé" }, "username"},

		// Beak print: 8–128 characters (runes, not bytes).
		{"password 7 chars", func(n *NewAccount) { n.Password = strings.Repeat("p", 7) }, "password"},
		{"password 8 chars", func(n *NewAccount) { n.Password = strings.Repeat("p", 8) }, ""},
		{"password 128 chars", func(n *NewAccount) { n.Password = strings.Repeat("p", 128) }, ""},
		{"password 129 chars", func(n *NewAccount) { n.Password = strings.Repeat("p", 129) }, "password"},
		{"password empty", func(n *NewAccount) { n.Password = "" }, "password"},
		{"password 7 multibyte runes (14 bytes)", func(n *NewAccount) { n.Password = strings.Repeat("ж", 7) }, "password"},
		{"password 8 multibyte runes", func(n *NewAccount) { n.Password = strings.Repeat("ж", 8) }, ""},
		{"password 128 multibyte runes (256 bytes)", func(n *NewAccount) { n.Password = strings.Repeat("ж", 128) }, ""},
		{"password 129 multibyte runes", func(n *NewAccount) { n.Password = strings.Repeat("ж", 129) }, "password"},
		{"password 8 emoji (32 bytes)", func(n *NewAccount) { n.Password = strings.Repeat("🦜", 8) }, ""},
		{"password invalid UTF-8", func(n *NewAccount) { n.Password = strings.Repeat("\xff", 10) }, "password"},
		{"password spaces only count", func(n *NewAccount) { n.Password = strings.Repeat(" ", 8) }, ""},

		// Full name: not blank, at most MaxFullNameLen characters.
		{"fullName empty", func(n *NewAccount) { n.FullName = "" }, "fullName"},
		{"fullName whitespace", func(n *NewAccount) { n.FullName = " \t\n " }, "fullName"},
		{"fullName one char", func(n *NewAccount) { n.FullName = "P" }, ""},
		{"fullName 200 chars", func(n *NewAccount) { n.FullName = strings.Repeat("n", 200) }, ""},
		{"fullName 200 multibyte runes", func(n *NewAccount) { n.FullName = strings.Repeat("ё", 200) }, ""},
		{"fullName 201 chars", func(n *NewAccount) { n.FullName = strings.Repeat("n", 201) }, "fullName"},

		// Email: a plain address.
		{"email empty", func(n *NewAccount) { n.Email = "" }, "email"},
		{"email without at", func(n *NewAccount) { n.Email = "popug.uberpopug.com" }, "email"},
		{"email with display name", func(n *NewAccount) { n.Email = "Popug <popug@uberpopug.com>" }, "email"},
		{"email with spaces", func(n *NewAccount) { n.Email = " popug@uberpopug.com " }, "email"},
		{"email two at signs", func(n *NewAccount) { n.Email = "po@pug@uberpopug.com" }, "email"},
		{"email 254 chars", func(n *NewAccount) { n.Email = strings.Repeat("a", 64) + "@" + longDomain(185) + ".com" }, ""},
		{"email 255 chars", func(n *NewAccount) { n.Email = strings.Repeat("a", 64) + "@" + longDomain(186) + ".com" }, "email"},
		{"email huge", func(n *NewAccount) { n.Email = strings.Repeat("a", 1<<20) + "@uberpopug.com" }, "email"},
		{"email local part 65 chars", func(n *NewAccount) { n.Email = strings.Repeat("a", 65) + "@uberpopug.com" }, "email"},
		{"email domain label 64 chars", func(n *NewAccount) { n.Email = "popug@" + strings.Repeat("b", 64) + ".com" }, "email"},
		{"email domain without a dot", func(n *NewAccount) { n.Email = "popug@localhost" }, "email"},
		{"email domain empty label", func(n *NewAccount) { n.Email = "popug@uberpopug..com" }, "email"},
		{"email domain label leading hyphen", func(n *NewAccount) { n.Email = "popug@-uberpopug.com" }, "email"},
		{"email domain literal", func(n *NewAccount) { n.Email = "popug@[127.0.0.1]" }, "email"},
		{"email quoted local part", func(n *NewAccount) { n.Email = `"po pug"@uberpopug.com` }, "email"},
		{"email NUL", func(n *NewAccount) { n.Email = "po\x00pug@uberpopug.com" }, "email"},
		{"email newline", func(n *NewAccount) { n.Email = "popug@uberpopug.com\nBcc: x@y.com" }, "email"},
		{"email RLO", func(n *NewAccount) { n.Email = "popug\u202e@uberpopug.com" }, "email"},
		{"email zero-width", func(n *NewAccount) { n.Email = "po\u200bpug@uberpopug.com" }, "email"},
		{"email no-break space", func(n *NewAccount) { n.Email = "po\u00a0pug@uberpopug.com" }, "email"},
		{"email internationalized", func(n *NewAccount) { n.Email = "попуг@уберпопуг.рф" }, ""},
		{"email plus tag", func(n *NewAccount) { n.Email = "popug+ates@uberpopug.com" }, ""},

		// Full name hygiene (R-SEC-6).
		{"fullName NUL", func(n *NewAccount) { n.FullName = "Popug\x00" }, "fullName"},
		{"fullName newline", func(n *NewAccount) { n.FullName = "Popug\nPopugovich" }, "fullName"},
		{"fullName C1", func(n *NewAccount) { n.FullName = "Popug\u009b" }, "fullName"},
		{"fullName RLO", func(n *NewAccount) { n.FullName = "Popug \u202evohcivogupoP" }, "fullName"},
		{"fullName isolate", func(n *NewAccount) { n.FullName = "\u2067Popug\u2069" }, "fullName"},
		{"fullName zero-width only", func(n *NewAccount) { n.FullName = "\u200b\u200c\u2060\ufeff" }, "fullName"},
		{"fullName hebrew with RLM", func(n *NewAccount) { n.FullName = "\u05e4\u05d5\u05e4\u05d5\u05d2\u200f" }, ""},
		{"fullName invalid UTF-8", func(n *NewAccount) { n.FullName = "Popug\xff" }, "fullName"},

		// Beak print hygiene (R-SEC-6): no control characters; the rest is the popug's choice.
		{"password NUL", func(n *NewAccount) { n.Password = "beakprint\x00" }, "password"},
		{"password tab", func(n *NewAccount) { n.Password = "beak\tprint" }, "password"},
		{"password newline", func(n *NewAccount) { n.Password = "beakprint\n" }, "password"},
		{"password C1", func(n *NewAccount) { n.Password = "beakprint\u0085" }, "password"},
		{"password DEL", func(n *NewAccount) { n.Password = "beakprint\x7f" }, "password"},
		{"password huge", func(n *NewAccount) { n.Password = strings.Repeat("p", 1<<20) }, "password"},
		{"password with zero-width and bidi", func(n *NewAccount) { n.Password = "beak\u200bprint\u202e" }, ""},

		// Role: one of the four.
		{"role empty", func(n *NewAccount) { n.Role = "" }, "role"},
		{"role unknown", func(n *NewAccount) { n.Role = "ROOT" }, "role"},
		{"role lowercase", func(n *NewAccount) { n.Role = "admin" }, "role"},
		{"role ADMIN", func(n *NewAccount) { n.Role = identity.Admin }, ""},
		{"role MANAGER", func(n *NewAccount) { n.Role = identity.Manager }, ""},
		{"role ACCOUNTANT", func(n *NewAccount) { n.Role = identity.Accountant }, ""},

		// The first offending field is named.
		{"username reported before password", func(n *NewAccount) { n.Username, n.Password = "X", "" }, "username"},
		{"password reported before email", func(n *NewAccount) { n.Password, n.Email = "", "" }, "password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := validAccount()
			tt.edit(&n)
			err := n.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok {
				t.Fatalf("Validate() = %v, want an *errs.Error on field %q", err, tt.field)
			}
			if e.Code != errs.Invalid || e.Field != tt.field {
				t.Fatalf("Validate() = {code %s, field %q, %q}, want code %s on field %q", e.Code, e.Field, e.Message, errs.Invalid, tt.field)
			}
			if e.Message == "" {
				t.Fatal("the error has no message")
			}
		})
	}
}

// longDomain is a domain of n characters made of labels of at most 63.
func longDomain(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Repeat("b", min(63, n-b.Len())))
	}
	return b.String()
}

// TestNewAccountValidateReportsEveryField: R-SEC-6 — sign-up and account creation report every
// offending field in Meta["fields"], in input order; Field and Message are the first's.
func TestNewAccountValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := NewAccount{Username: "X", Password: "short", FullName: "\u200b", Email: "nope", Role: "ROOT"}.Validate()
	e, ok := errs.As(err)
	if !ok || e.Code != errs.Invalid || e.Field != "username" || e.Message == "" {
		t.Fatalf("Validate() = %#v, want BAD_USER_INPUT on username", err)
	}
	fields, _ := e.Meta["fields"].([]map[string]string)
	var got []string
	for _, f := range fields {
		if f["message"] == "" {
			t.Errorf("field %s has no message", f["field"])
		}
		got = append(got, f["field"])
	}
	if strings.Join(got, ",") != "username,password,fullName,email,role" {
		t.Fatalf("fields = %v, want every field", got)
	}
	if fields[0]["message"] != e.Message {
		t.Fatalf("Message %q is not the first field's %q", e.Message, fields[0]["message"])
	}
}
