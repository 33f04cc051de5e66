package tasks_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// replicaRow is an account of the task tracker's replica.
type replicaRow struct {
	Role    string
	Active  bool
	Version int64
}

func (h *harness) mustReplica(tb testing.TB, id uuid.UUID) (replicaRow, bool) {
	tb.Helper()
	rows, err := h.client.Account.Query().Where(account.PublicID(id)).All(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if len(rows) == 0 {
		return replicaRow{}, false
	}
	if len(rows) > 1 {
		tb.Fatalf("%d replica rows for %s", len(rows), id)
	}
	return replicaRow{Role: string(rows[0].Role), Active: rows[0].Active, Version: rows[0].Version}, true
}

// TestAccountReplica: R-AUTH-6 — the account replica follows account.created/updated by
// version, whatever order they arrive in, so R-TASK-3 is decided on current data.
func TestAccountReplica(t *testing.T) {
	t.Parallel()
	type step struct {
		name    string
		role    identity.Role
		active  bool
		version int64
	}
	tests := []struct {
		name  string
		steps []step
		want  replicaRow
	}{
		{"created", []step{{contract.AccountCreated, identity.Worker, true, 1}},
			replicaRow{"WORKER", true, 1}},
		{"role change", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Manager, true, 2}},
			replicaRow{"MANAGER", true, 2}},
		{"deactivation", []step{
			{contract.AccountCreated, identity.Accountant, true, 1},
			{contract.AccountUpdated, identity.Accountant, false, 2}},
			replicaRow{"ACCOUNTANT", false, 2}},
		{"updated before created", []step{
			{contract.AccountUpdated, identity.Accountant, true, 2},
			{contract.AccountCreated, identity.Worker, true, 1}},
			replicaRow{"ACCOUNTANT", true, 2}},
		{"updates out of order", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Worker, false, 3},
			{contract.AccountUpdated, identity.Manager, true, 2}},
			replicaRow{"WORKER", false, 3}},
		{"stale version ignored", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Admin, true, 5},
			{contract.AccountUpdated, identity.Worker, true, 4}},
			replicaRow{"ADMIN", true, 5}},
		{"same version replayed with other data ignored", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Worker, false, 2},
			{contract.AccountUpdated, identity.Worker, true, 2}},
			replicaRow{"WORKER", false, 2}},
		{"created replayed after updates", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Manager, false, 2},
			{contract.AccountCreated, identity.Worker, true, 1}},
			replicaRow{"MANAGER", false, 2}},
		{"reactivation", []step{
			{contract.AccountCreated, identity.Worker, true, 1},
			{contract.AccountUpdated, identity.Worker, false, 2},
			{contract.AccountUpdated, identity.Worker, true, 3}},
			replicaRow{"WORKER", true, 3}},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		bystander := h.MustPopug(t, identity.Worker)
		for _, tt := range tests {
			id := uuid.New()
			for _, s := range tt.steps {
				h.MustApply(t, s.name, id, s.role, s.active, s.version)
			}
			got, ok := h.mustReplica(t, id)
			if !ok || got != tt.want {
				t.Errorf("%s: replica = %+v (present %v), want %+v", tt.name, got, ok, tt.want)
			}
		}
		// Nobody else was touched.
		if got, _ := h.mustReplica(t, bystander.AccountID); got != (replicaRow{"WORKER", true, 1}) {
			t.Fatalf("bystander = %+v", got)
		}
		if n, err := h.client.Account.Query().Count(context.Background()); err != nil || n != len(tests)+1 {
			t.Fatalf("replica holds %d accounts (%v), want %d", n, err, len(tests)+1)
		}
	})
}

// TestApplyRefusals: an account event the replica can never accept is a permanent failure
// (dead-lettered at once, R-EVT-2); events of other names are ignored.
func TestApplyRefusals(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		h := MustService(t, db)
		good := contract.Account{AccountID: uuid.NewString(), Username: "popug", Email: "p@uberpopug.com", FullName: "P",
			Role: "WORKER", Active: true, Version: 1, ChangedAt: start}

		badRole := good
		badRole.Role = "ROOT"
		e, err := event.New(context.Background(), "auth", contract.AccountCreated, 1, start, badRole)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.apply(t, e); !inbox.IsPermanent(err) {
			t.Fatalf("unknown role: Apply = %v, want a permanent error", err)
		}
		badID := good
		badID.AccountID = "not-a-uuid"
		e, _ = event.New(context.Background(), "auth", contract.AccountUpdated, 1, start, badID)
		if err := h.apply(t, e); !inbox.IsPermanent(err) {
			t.Fatalf("bad account id: Apply = %v, want a permanent error", err)
		}
		e.Data = json.RawMessage(`{"accountId": 7}`)
		if err := h.apply(t, e); !inbox.IsPermanent(err) {
			t.Fatalf("undecodable data: Apply = %v, want a permanent error", err)
		}
		// Business events of auth and events of other contexts are not the replica's.
		e, _ = event.New(context.Background(), "auth", contract.AccountRoleChanged, 1, start, contract.AccountRoleChangedV1{
			AccountID: good.AccountID, OldRole: "WORKER", NewRole: "ADMIN", Version: 2, ChangedAt: start})
		if err := h.apply(t, e); err != nil {
			t.Fatalf("account.role_changed: Apply = %v, want it ignored", err)
		}
		if n, _ := h.client.Account.Query().Count(context.Background()); n != 0 {
			t.Fatalf("refused or ignored events stored %d accounts", n)
		}
	})
}
