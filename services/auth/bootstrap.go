package auth

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/uberpopug/ates/services/identity"
)

// Bootstrap creates the first admin when the auth database holds no account (R-AUTH-3). An
// empty password is replaced by a generated one, returned so the caller can print it once.
// It reports whether an admin was created.
func (s *Service) Bootstrap(ctx context.Context, username, password string) (created bool, usedPassword string, err error) {
	n, err := s.client.Account.Query().Count(ctx)
	if err != nil {
		return false, "", fmt.Errorf("auth: counting accounts: %w", err)
	}
	if n > 0 {
		return false, "", nil
	}
	if username == "" {
		username = "admin"
	}
	if password == "" {
		password = rand.Text()
	}
	_, err = s.create(ctx, NewAccount{
		Username: username, Password: password, FullName: "Administrator",
		Email: username + "@uberpopug.local", Role: identity.Admin,
	})
	if err != nil {
		// Another process may have bootstrapped at the same moment.
		if n, cerr := s.client.Account.Query().Count(ctx); cerr == nil && n > 0 {
			return false, "", nil
		}
		return false, "", fmt.Errorf("auth: creating the bootstrap admin: %w", err)
	}
	return true, password, nil
}
