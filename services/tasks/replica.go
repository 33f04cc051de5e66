package tasks

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/inbox"
)

// ConsumerName is the task tracker's name in its inbox and dead-letter store.
const ConsumerName = "tasks"

// Topics are the events the task tracker consumes: the account replication events.
var Topics = []string{contract.AccountCreated, contract.AccountUpdated}

// Apply applies a consumed event inside the consumer's transaction: account events keep the
// account replica current (R-AUTH-6), so role changes and deactivations change who is
// assignable as soon as they are consumed. Events are applied by version, so an update
// arriving before the creation, or a stale one after a newer, ends in the right state.
func (s *Service) Apply(ctx context.Context, tx *tasksdb.Tx, e event.Envelope) error {
	switch e.Name {
	case contract.AccountCreated, contract.AccountUpdated:
		var d contract.Account
		if err := e.DecodeData(&d); err != nil {
			return inbox.Permanent(err)
		}
		return s.upsertAccount(ctx, tx, d)
	default:
		return nil // not ours: bindings may be broader than what this version handles
	}
}

func (s *Service) upsertAccount(ctx context.Context, tx *tasksdb.Tx, d contract.Account) error {
	id, err := uuid.Parse(d.AccountID)
	if err != nil {
		return inbox.Permanent(fmt.Errorf("tasks: account id %q: %w", d.AccountID, err))
	}
	if _, err := identity.ParseRole(d.Role); err != nil {
		return inbox.Permanent(err)
	}
	// Only a newer version replaces what the replica holds.
	_, err = tx.ExecContext(ctx, s.sql(`INSERT INTO accounts (public_id, role, active, version) VALUES ($1, $2, $3, $4)
		ON CONFLICT (public_id) DO UPDATE SET role = excluded.role, active = excluded.active, version = excluded.version
		WHERE accounts.version < excluded.version`), id.String(), d.Role, d.Active, d.Version)
	if err != nil {
		return fmt.Errorf("tasks: updating the account replica: %w", err)
	}
	return nil
}
