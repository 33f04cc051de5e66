package outbox

import (
	"context"
	"fmt"

	"github.com/uberpopug/ates/services/storage"
)

// Migrate upgrades a context's outbox table after Ent's migration has run, doing what Ent's
// does not: it drops outboxevent_sent_at, the index on sent_at over every row that the partial
// index of unsent rows (eventschema.UnsentIndex) replaced. Every context with an outbox runs it;
// it is idempotent.
func Migrate(ctx context.Context, db *storage.DB) error {
	if _, err := db.SQL.ExecContext(ctx, "DROP INDEX IF EXISTS outboxevent_sent_at"); err != nil {
		return fmt.Errorf("outbox: dropping the old sent_at index: %w", err)
	}
	return nil
}
