package auth

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/services/storage"
)

// Migrate creates or upgrades the auth context's tables on db: Ent's migration, then what it
// does not do — drop login_throttles, which login_limits replaced (R-SEC-3); fill the search
// text of accounts stored before it existed; and, on PostgreSQL, a trigram index for Search
// (the pg_trgm extension is created when missing: a trusted extension, the database's owner
// may). The caller serializes migrations (storage.DB.Migrate).
func Migrate(ctx context.Context, db *storage.DB) error {
	client := authdb.NewClient(authdb.Driver(db.Driver()))
	if err := client.Schema.Create(ctx); err != nil {
		return err
	}
	if _, err := db.SQL.ExecContext(ctx, "DROP TABLE IF EXISTS login_throttles"); err != nil {
		return fmt.Errorf("auth: dropping the old login throttle table: %w", err)
	}
	if err := fillSearchText(ctx, client); err != nil {
		return err
	}
	if db.Dialect == dialect.Postgres {
		for _, stmt := range []string{
			"CREATE EXTENSION IF NOT EXISTS pg_trgm",
			"CREATE INDEX IF NOT EXISTS account_search_text_trgm ON accounts USING gin (search_text gin_trgm_ops)",
		} {
			if _, err := db.SQL.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("auth: the accounts' search index: %w", err)
			}
		}
	}
	return nil
}

// fillSearchText computes the search text of accounts that have none, a batch at a time.
func fillSearchText(ctx context.Context, c *authdb.Client) error {
	for {
		rows, err := c.Account.Query().Where(account.SearchText("")).Limit(500).All(ctx)
		if err != nil {
			return fmt.Errorf("auth: reading accounts without search text: %w", err)
		}
		if len(rows) == 0 {
			return nil
		}
		for _, r := range rows {
			if err := c.Account.UpdateOneID(r.ID).SetSearchText(searchText(r.Username, r.FullName, r.Email)).Exec(ctx); err != nil {
				return fmt.Errorf("auth: filling an account's search text: %w", err)
			}
		}
	}
}
