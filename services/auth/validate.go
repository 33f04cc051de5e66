package auth

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/text"
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

// Limits of R-AUTH-1, and of the fields the SPEC leaves open (R-SEC-6).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
	MaxFullNameLen = 200
	MaxEmailLen    = 254
	// maxEmailLocalLen and maxDomainLabelLen are RFC 5321's and RFC 1035's.
	maxEmailLocalLen  = 64
	maxDomainLabelLen = 63
)

var fullNameRule = text.Rule{Min: 1, Max: MaxFullNameLen}

// NewAccount is what sign-up and account creation need (R-AUTH-1, R-AUTH-2).
type NewAccount struct {
	Username string
	Password string
	FullName string
	Email    string
	Role     identity.Role
}

// Validate checks every rule of R-AUTH-1 and R-SEC-6 and reports every offending field at once
// (errs.InvalidFields: Field names the first, Meta["fields"] lists them all).
func (n NewAccount) Validate() error {
	return errs.InvalidFields(
		validateUsername(n.Username),
		validatePassword("password", n.Password),
		validateFullName(n.FullName),
		validateEmail(n.Email),
		validateRole(n.Role),
	)
}

func validateUsername(u string) *errs.Error {
	if !usernamePattern.MatchString(u) {
		return errs.InvalidField("username", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'")
	}
	return nil
}

func validateRole(r identity.Role) *errs.Error {
	if _, err := identity.ParseRole(string(r)); err != nil {
		return errs.InvalidField("role", "role must be one of ADMIN, MANAGER, ACCOUNTANT, WORKER")
	}
	return nil
}

// validatePassword: 8–128 characters of valid UTF-8 without control characters (R-AUTH-1,
// R-SEC-6). Everything else is the popug's choice, spaces, bidi and invisible characters
// included: a beak print is never displayed.
func validatePassword(field, p string) *errs.Error {
	if len(p) > 4*MaxPasswordLen || !utf8.ValidString(p) {
		return errs.InvalidField(field, "beak print (password) must be %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	if n := utf8.RuneCountInString(p); n < MinPasswordLen || n > MaxPasswordLen {
		return errs.InvalidField(field, "beak print (password) must be %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	for _, c := range p {
		if c < 0x20 || (c >= 0x7f && c <= 0x9f) {
			return errs.InvalidField(field, "beak print (password) must not contain control characters (tabs, line breaks, NUL, …)")
		}
	}
	return nil
}

func validateFullName(name string) *errs.Error {
	return text.Field("fullName", "full name", name, fullNameRule)
}

// validateEmail accepts a plain address (no display name, no quoted local part, no domain
// literal) of at most 254 characters, with a local part of at most 64 and a domain of dotted
// labels of at most 63 each; internationalized addresses are allowed (R-SEC-6).
func validateEmail(e string) *errs.Error {
	bad := errs.InvalidField("email", "email must be a plain address like popug@uberpopug.com")
	if len(e) > MaxEmailLen {
		return errs.InvalidField("email", "email must be at most %d characters", MaxEmailLen)
	}
	if text.Check(e, text.Rule{Min: 3, Max: MaxEmailLen}) != text.OK {
		return bad
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return bad
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || len(local) > maxEmailLocalLen || strings.ContainsAny(local, "\" ") {
		return bad
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return bad
	}
	for _, l := range labels {
		if l == "" || len(l) > maxDomainLabelLen || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") || strings.ContainsAny(l, "[]") {
			return bad
		}
	}
	for _, c := range e {
		if unicode.IsSpace(c) || text.IsInvisible(c) {
			return bad
		}
	}
	return nil
}
