package accounting

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/storage"
)

// Migrate creates or upgrades the accounting tables on db: Ent's migration, then what it does
// not do. It moves an older database's email jobs onto the payments (moveEmailJobs), drops
// indexes the schema no longer has, and fills the per-day rollups and entry counts of a
// database whose entries predate them (RebuildRollups). On PostgreSQL it leaves half of every
// accounts page free for new rows: a balance update (every ledger entry, every payout) then
// finds room on its row's page and is a HOT update — a new row version there and no new index
// entry — where on full pages it costs an entry in each of the table's indexes. A migration of
// a database already up to date changes nothing: each step looks before it alters. The caller
// serializes migrations (storage.DB.Migrate).
func Migrate(ctx context.Context, db *storage.DB) error {
	if err := accountingdb.NewClient(accountingdb.Driver(db.Driver())).Schema.Create(ctx); err != nil {
		return err
	}
	if err := moveEmailJobs(ctx, db.SQL, db.Dialect); err != nil {
		return err
	}
	// Ent's migration keeps indexes the schema no longer has: entry_day_type held every entry;
	// entry_earnings_day_type, which replaced it, the FEE and REWARD ones, which the company
	// days now sum.
	for _, name := range []string{"entry_day_type", "entry_earnings_day_type"} {
		if err := dropIndex(ctx, db, name); err != nil {
			return err
		}
	}
	missing, err := rollupsMissing(ctx, db.SQL)
	if err != nil {
		return err
	}
	if missing {
		if err := RebuildRollups(ctx, db); err != nil {
			return err
		}
	}
	if db.Dialect == dialect.Postgres {
		var options string
		if err := db.SQL.QueryRowContext(ctx, `SELECT COALESCE(array_to_string(reloptions, ','), '') FROM pg_class
			WHERE oid = 'accounts'::regclass`).Scan(&options); err != nil {
			return fmt.Errorf("accounting: reading the accounts table's options: %w", err)
		}
		if !slices.Contains(strings.Split(options, ","), "fillfactor=50") {
			if _, err := db.SQL.ExecContext(ctx, "ALTER TABLE accounts SET (fillfactor = 50)"); err != nil {
				return fmt.Errorf("accounting: leaving room on the accounts pages: %w", err)
			}
		}
	}
	return nil
}

// dropIndex drops the index where there is one.
func dropIndex(ctx context.Context, db *storage.DB, name string) error {
	exists := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1"
	if db.Dialect == dialect.Postgres {
		exists = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, storage.Rebind(db.Dialect, exists), name).Scan(&n); err != nil {
		return fmt.Errorf("accounting: looking for index %s: %w", name, err)
	}
	if n == 0 {
		return nil
	}
	if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS "+name); err != nil {
		return fmt.Errorf("accounting: dropping index %s: %w", name, err)
	}
	return nil
}

// moveEmailJobs moves what an older database kept in its email_jobs table — a payment's email
// attempts, next attempt and last error — onto the payments, which are their own email jobs
// now, and drops the table, in one transaction. It runs after Ent's migration (which adds the
// payments' email columns and drops no table) and does nothing where there is no such table.
func moveEmailJobs(ctx context.Context, db *sql.DB, d string) error {
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
