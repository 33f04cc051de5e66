package accounting_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestAccountUpdatedChangesNameAndEmail: R-AUTH-6 — a popug who changes their own full name
// and email (auth's UpdateProfile, the username unchanged) is known to accounting by the new
// ones from account.updated — payment emails go to the new address — one event at a time and
// in batches; an older update after it changes nothing back.
func TestAccountUpdatedChangesNameAndEmail(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		batch := h.mustBatchReplica(t, db, newLockedRand(seed1, seed2))
		profile := func(id uuid.UUID, name, email string, version int64) contract.Account {
			return contract.Account{AccountID: id.String(), Username: "kesha", Email: email, FullName: name,
				Role: string(identity.Worker), Active: true, Version: version, ChangedAt: start.Add(time.Duration(version) * time.Minute)}
		}
		one, many := uuid.New(), uuid.New()
		for _, id := range []uuid.UUID{one, many} {
			h.deliver(t, mustEvent(t, "auth", contract.AccountCreated, 1, start, profile(id, "Kesha", "kesha@uberpopug.com", 1)))
		}
		h.deliver(t,
			mustEvent(t, "auth", contract.AccountUpdated, 1, start, profile(one, "Иннокентий Попугаев", "kesha@popugai.ru", 2)),
			mustEvent(t, "auth", contract.AccountUpdated, 1, start, profile(one, "Kesha", "kesha@uberpopug.com", 1)),
		)
		deliverBatch(t, batch, []event.Envelope{
			mustEvent(t, "auth", contract.AccountUpdated, 1, start, profile(many, "Innokenty", "inno@popug.org", 3)),
			mustEvent(t, "auth", contract.AccountUpdated, 1, start, profile(many, "Kesha II", "old@popug.org", 2)),
		})
		for id, want := range map[uuid.UUID][2]string{one: {"Иннокентий Попугаев", "kesha@popugai.ru"}, many: {"Innokenty", "inno@popug.org"}} {
			r := h.mustBillingAccount(t, id)
			if r.FullName != want[0] || r.Email != want[1] || r.Username != "kesha" {
				t.Errorf("replica of %s: %q <%s> (%s), want %q <%s>", id, r.FullName, r.Email, r.Username, want[0], want[1])
			}
		}
	})
}
