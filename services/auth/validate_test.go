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
		{"email 254 chars", func(n *NewAccount) { n.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com" }, ""},
		{"email 255 chars", func(n *NewAccount) { n.Email = strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com" }, "email"},

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
