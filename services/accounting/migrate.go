package accounting

import (
	"context"
	"database/sql"
	"fmt"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/storage"
)

// MigrateEmailJobs moves what an older database kept in its email_jobs table — a payment's
// email attempts, next attempt and last error — onto the payments, which are their own email
// jobs now, and drops the table, in one transaction. It runs after Ent's migration (which adds
// the payments' email columns and drops no table) and does nothing where there is no such table.
func MigrateEmailJobs(ctx context.Context, db *sql.DB, d string) error {
	exists := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'email_jobs'"
	if d == dialect.Postgres {
		exists = "SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'email_jobs'"
	}
	var n int
	if err := db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return fmt.Errorf("accounting: looking for old email jobs: %w", err)
	}
	if n == 0 {
		return nil
	}
	begin := func(ctx context.Context) (*sql.Tx, error) { return db.BeginTx(ctx, nil) }
	return storage.InTx(ctx, begin, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE payments SET email_attempts = j.attempts,
			email_next_attempt_at = j.next_attempt_at, email_last_error = j.last_error
			FROM email_jobs AS j WHERE j.payment_id = payments.public_id`); err != nil {
			return fmt.Errorf("accounting: moving email jobs onto their payments: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DROP TABLE email_jobs"); err != nil {
			return fmt.Errorf("accounting: dropping the old email jobs: %w", err)
		}
		return nil
	})
}
