package auth

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

// Limits of R-AUTH-1, and of the fields the SPEC leaves open.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
	MaxFullNameLen = 200
	MaxEmailLen    = 254
)

// NewAccount is what sign-up and account creation need (R-AUTH-1, R-AUTH-2).
type NewAccount struct {
	Username string
	Password string
	FullName string
	Email    string
	Role     identity.Role
}

// Validate checks every rule of R-AUTH-1; the error names the first offending field.
func (n NewAccount) Validate() error {
	if !usernamePattern.MatchString(n.Username) {
		return errs.InvalidField("username", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'")
	}
	if err := validatePassword(n.Password); err != nil {
		return err
	}
	name := strings.TrimSpace(n.FullName)
	if name == "" || utf8.RuneCountInString(name) > MaxFullNameLen {
		return errs.InvalidField("fullName", "full name must be 1 to %d characters", MaxFullNameLen)
	}
	if err := validateEmail(n.Email); err != nil {
		return err
	}
	if _, err := identity.ParseRole(string(n.Role)); err != nil {
		return errs.InvalidField("role", "role must be one of ADMIN, MANAGER, ACCOUNTANT, WORKER")
	}
	return nil
}

func validatePassword(p string) error {
	n := utf8.RuneCountInString(p)
	if !utf8.ValidString(p) || n < MinPasswordLen || n > MaxPasswordLen {
		return errs.InvalidField("password", "beak print (password) must be %d to %d characters", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

func validateEmail(e string) error {
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > MaxEmailLen {
		return errs.InvalidField("email", "email must be a plain address like popug@uberpopug.com")
	}
	return nil
}
