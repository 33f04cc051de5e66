package outbox

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/storage"
)

// Migrate upgrades a context's outbox table after Ent's migration has run, doing what Ent's
// does not: it drops outboxevent_sent_at, the index on sent_at over every row that the partial
// index of unsent rows (eventschema.UnsentIndex) replaced. Every context with an outbox runs it;
// it is idempotent, and runs no DDL where there is nothing to drop.
func Migrate(ctx context.Context, db *storage.DB) error {
	exists := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'outboxevent_sent_at'"
	if db.Dialect == dialect.Postgres {
		exists = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'outboxevent_sent_at'"
	}
	var n int
	if err := db.SQL.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return fmt.Errorf("outbox: looking for the old sent_at index: %w", err)
	}
	if n == 0 {
		return nil
	}
	if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS outboxevent_sent_at"); err != nil {
		return fmt.Errorf("outbox: dropping the old sent_at index: %w", err)
	}
	return nil
}
