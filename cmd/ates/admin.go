package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// runAdmin runs an operator's account command:
//
//	ates admin reset-password USERNAME
//
// It sets a new generated password for the account, prints it once and ends every session of
// the account (R-SESS-3): the way back in when the only admin's password is lost.
func runAdmin(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "reset-password" {
		return errors.New("usage: ates admin reset-password USERNAME")
	}
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	password, err := a.auth.ResetPassword(ctx, args[1])
	if err != nil {
		return fmt.Errorf("resetting the password of %s: %w", args[1], err)
	}
	fmt.Fprintf(stdout, "New password of %s: %s\n(printed once; every session of the account has ended)\n", args[1], password)
	return nil
}
