package tasks_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestCreateFollowsAnotherProcesssReplicaChanges: R-TASK-3 — several gateways create tasks
// over one tasks database while the consumer of another process changes the replica. A gateway
// that already drew from the replica draws, right after a change it did not apply itself, from
// the popugs assignable now: a new popug is reached, a deactivated or promoted one never.
func TestCreateFollowsAnotherProcesssReplicaChanges(t *testing.T) {
	t.Parallel()
	for _, prepared := range []bool{true, false} {
		t.Run(fmt.Sprintf("prepared=%v", prepared), func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				t.Parallel()
				opts := []option{withSeed(7, 8)}
				if !prepared {
					opts = append(opts, withoutPool())
				}
				followReplicaChanges(t, MustService(t, db), MustService(t, db, opts...))
			})
		})
	}
}

// followReplicaChanges: consumer applies the account events, gateway only creates tasks.
func followReplicaChanges(t *testing.T, consumer, gateway *harness) {
	t.Helper()
	a, b := consumer.MustPopug(t, identity.Worker), consumer.MustPopug(t, identity.Worker)
	draw := func(n int) map[uuid.UUID]int {
		t.Helper()
		got := map[uuid.UUID]int{}
		for i := range n {
			got[gateway.MustCreate(t, a, fmt.Sprintf("task %d", i)).AssigneeID]++
		}
		return got
	}
	if got := draw(20); len(got) != 2 {
		t.Fatalf("20 draws over a and b reached %v", got)
	}
	c := consumer.MustPopug(t, identity.Worker) // joins: the gateway has not seen c yet
	if got := draw(40); got[c.AccountID] == 0 || len(got) != 3 {
		t.Fatalf("after c joined, 40 draws = %v, want a, b and c all reached", got)
	}
	consumer.MustUpdate(t, a.AccountID, identity.Worker, false) // deactivated
	consumer.MustUpdate(t, b.AccountID, identity.Manager, true) // promoted
	consumer.MustUpdate(t, c.AccountID, identity.Worker, true)  // changed, still assignable
	d := consumer.MustPopug(t, identity.Accountant)             // joins, assignable too
	if got := draw(40); got[a.AccountID] != 0 || got[b.AccountID] != 0 || got[c.AccountID] == 0 || got[d.AccountID] == 0 {
		t.Fatalf("after deactivating a and promoting b, 40 draws = %v, want only c and d, both", got)
	}
}
