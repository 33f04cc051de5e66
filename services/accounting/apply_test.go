package accounting_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestNewRefusesMissingDependencies: the constructor takes every dependency explicitly and
// refuses a missing one (STYLE: one constructor, refusing nil).
func TestNewRefusesMissingDependencies(t *testing.T) {
	t.Parallel()
	db := storagetest.MustOpen(t, dialect.SQLite)
	client := accountingdb.NewClient(accountingdb.Driver(db.Driver()))
	w, err := outbox.NewWriter(db.Dialect, event.MustDefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	valid := func() accounting.Config {
		return accounting.Config{
			Client: client, DB: db.SQL, Dialect: db.Dialect, Outbox: w, Clock: time.Now,
			Rand: newLockedRand(1, 2), Location: time.UTC, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
	}
	tests := []struct {
		name   string
		mutate func(*accounting.Config)
		ok     bool
	}{
		{"valid", func(*accounting.Config) {}, true},
		{"no notify is fine", func(c *accounting.Config) { c.Notify = nil }, true},
		{"no client", func(c *accounting.Config) { c.Client = nil }, false},
		{"no db", func(c *accounting.Config) { c.DB = nil }, false},
		{"no outbox", func(c *accounting.Config) { c.Outbox = nil }, false},
		{"no clock", func(c *accounting.Config) { c.Clock = nil }, false},
		{"no rand", func(c *accounting.Config) { c.Rand = nil }, false},
		{"no location", func(c *accounting.Config) { c.Location = nil }, false},
		{"no logger", func(c *accounting.Config) { c.Logger = nil }, false},
		{"no dialect", func(c *accounting.Config) { c.Dialect = "" }, false},
		{"unknown dialect", func(c *accounting.Config) { c.Dialect = "mysql" }, false},
	}
	for _, tt := range tests {
		cfg := valid()
		tt.mutate(&cfg)
		svc, err := accounting.New(cfg)
		if tt.ok && (err != nil || svc == nil) {
			t.Errorf("%s: New = %v, %v", tt.name, svc, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
}

// TestApplyMalformedDataIsPermanent: R-EVT-2, R-EVT-5 — data the service can never apply (the
// registry normally refuses it first) is a permanent error, so the consumer dead-letters it at
// once, and the failed transaction leaves nothing behind; events accounting does not consume
// are ignored.
func TestApplyMalformedDataIsPermanent(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		ctx := context.Background()
		valid := uuid.NewString()
		envelope := func(name string, version int, data string) event.Envelope {
			return event.Envelope{ID: uuid.NewString(), Name: name, Version: version, Time: start, Producer: "tasks",
				CorrelationID: "c", Data: json.RawMessage(data)}
		}
		tests := []event.Envelope{
			envelope(contract.TaskAssigned, 1, `{"taskId":"not-a-uuid","assigneeId":"`+valid+`","assignedAt":"2026-11-22T10:00:00Z"}`),
			envelope(contract.TaskCompleted, 1, `{"taskId":"`+valid+`","assigneeId":"nope","completedAt":"2026-11-22T10:00:00Z"}`),
			envelope(contract.TaskCreated, 1, `{"taskId":"x","title":"t","description":"d","createdAt":"2026-11-22T10:00:00Z"}`),
			envelope(contract.TaskCreated, 3, `{"taskId":"`+valid+`"}`),
			envelope(contract.AccountCreated, 1, `{"accountId":"`+valid+`","role":"OWNER","version":1}`),
			envelope(contract.TaskAssigned, 1, `[1, 2]`),
		}
		for _, e := range tests {
			err := storage.InTx(ctx, h.client.Tx, func(tx *accountingdb.Tx) error { return h.svc.Apply(ctx, tx, e) })
			if !inbox.IsPermanent(err) {
				t.Errorf("%s v%d %s: error %v, want a permanent one", e.Name, e.Version, e.Data, err)
			}
		}
		ignored := envelope(contract.AccountRoleChanged, 1, `{}`)
		if err := storage.InTx(ctx, h.client.Tx, func(tx *accountingdb.Tx) error { return h.svc.Apply(ctx, tx, ignored) }); err != nil {
			t.Errorf("an event accounting does not consume: %v", err)
		}
		for _, table := range []string{"accounts", "tasks", "entries", "outbox_events"} {
			if n := h.mustCount(t, `SELECT COUNT(*) FROM `+table); n != 0 {
				t.Errorf("%s holds %d rows after refused events", table, n)
			}
		}
	})
}
