package event_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

const (
	taskID = "7f1d7c4e-7a43-4c0a-9d4e-0f3a4d1c2b5a"
	popug  = "2b0f5f4e-3c1d-4e5f-8a9b-0c1d2e3f4a5b"
)

// validData is one valid payload per registered event name and version, in its contract type.
var validData = map[string]any{
	"account.created/1":      contract.Account{AccountID: popug, Username: "kesha", Email: "k@u.com", FullName: "Kesha", Role: "WORKER", Active: true, Version: 1, ChangedAt: t0},
	"account.updated/1":      contract.Account{AccountID: popug, Username: "kesha", Email: "k@u.com", FullName: "Kesha", Role: "MANAGER", Active: false, Version: 3, ChangedAt: t0},
	"account.role_changed/1": contract.AccountRoleChangedV1{AccountID: popug, OldRole: "WORKER", NewRole: "MANAGER", Version: 2, ChangedAt: t0},
	"account.deactivated/1":  contract.AccountDeactivatedV1{AccountID: popug, Version: 3, ChangedAt: t0},
	"account.reactivated/1":  contract.AccountReactivatedV1{AccountID: popug, Version: 4, ChangedAt: t0},
	"session.ended/1":        contract.SessionEndedV1{SessionID: taskID, AccountID: popug, Reason: contract.SessionEndedLogout, EndedAt: t0, TokensExpireBy: t0},
	"task.created/1":         contract.TaskCreatedV1{TaskID: taskID, Title: "[UBERPOP-42] - Fix", Description: "d", CreatedAt: t0},
	"task.created/2":         contract.TaskCreatedV2{TaskID: taskID, Title: "Fix", JiraID: ptr("UBERPOP-42"), Description: "d", CreatedAt: t0},
	"task.updated/1":         contract.TaskUpdatedV1{TaskID: taskID, Title: "Fix", Description: "d", Status: "DONE", CreatedAt: t0, CompletedAt: &t0},
	"task.assigned/1":        contract.TaskAssignedV1{TaskID: taskID, AssigneeID: popug, Reason: "shuffle", PreviousAssigneeID: ptr(popug), AssignedAt: t0},
	"task.completed/1":       contract.TaskCompletedV1{TaskID: taskID, AssigneeID: popug, CompletedAt: t0},
	"task.priced/1":          contract.TaskPricedV1{TaskID: taskID, Fee: 1500, Reward: 3200, PricedAt: t0},
	"payment.made/1":         contract.PaymentMadeV1{PaymentID: taskID, AccountID: popug, Amount: 3500, Day: "2026-11-22", PaidAt: t0},
	"day.closed/1":           contract.DayClosedV1{Day: "2026-11-22", Scheduled: true, PaidAccounts: 2, TotalPaid: 7000, ClosedAt: t0},
	"balance.changed/1":      contract.BalanceChangedV1{EntryID: taskID, Sequence: 7, AccountID: popug, Type: "FEE", Amount: -1500, BalanceAfter: -1500, TaskID: ptr(taskID), Description: "Fee for task Fix", OccurredAt: t0, Day: "2026-11-22"},
}

func mustEnvelope(t testing.TB, key string, data any) event.Envelope {
	t.Helper()
	name, v, _ := strings.Cut(key, "/")
	version := int(v[0] - '0')
	e, err := event.New(context.Background(), "test", name, version, t0, data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEveryRegisteredEventHasValidExample: every schema file is exercised and every contract
// type produces data its schema accepts (R-EVT-2).
func TestEveryRegisteredEventHasValidExample(t *testing.T) {
	reg := event.MustDefaultRegistry()
	for key, data := range validData {
		if err := reg.Validate(mustEnvelope(t, key, data)); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	// Every schema file on disk has an example here.
	err := fs.WalkDir(event.SchemaFiles(), "schemas", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "schemas/envelope.json" {
			return err
		}
		key := strings.TrimSuffix(strings.TrimPrefix(p, "schemas/"), ".json")
		if _, ok := validData[key]; !ok {
			t.Errorf("schema %s has no example in this test", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRegistryRefusesInvalidEvents(t *testing.T) {
	reg := event.MustDefaultRegistry()
	good := mustEnvelope(t, "task.assigned/1", validData["task.assigned/1"])
	cases := map[string]func(e *event.Envelope){
		"unknown name":       func(e *event.Envelope) { e.Name = "task.exploded" },
		"unknown version":    func(e *event.Envelope) { e.Version = 9 },
		"bad event id":       func(e *event.Envelope) { e.ID = "not-a-uuid" },
		"empty producer":     func(e *event.Envelope) { e.Producer = "" },
		"empty correlation":  func(e *event.Envelope) { e.CorrelationID = "" },
		"bad name pattern":   func(e *event.Envelope) { e.Name = "Task Assigned" },
		"data missing field": func(e *event.Envelope) { e.Data = json.RawMessage(`{"taskId":"` + taskID + `"}`) },
		"data wrong enum": func(e *event.Envelope) {
			e.Data = json.RawMessage(`{"taskId":"` + taskID + `","assigneeId":"` + popug + `","previousAssigneeId":null,"reason":"magic","assignedAt":"2026-11-22T10:00:00Z"}`)
		},
		"data bad uuid": func(e *event.Envelope) {
			e.Data = json.RawMessage(`{"taskId":"x","assigneeId":"` + popug + `","previousAssigneeId":null,"reason":"created","assignedAt":"2026-11-22T10:00:00Z"}`)
		},
	}
	for name, mutate := range cases {
		e := good
		mutate(&e)
		if err := reg.Validate(e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := reg.Validate(good); err != nil {
		t.Fatalf("the unmutated event is refused: %v", err)
	}
	for name, body := range map[string]string{
		"not JSON":        `{`,
		"extra field":     `{"eventId":"` + taskID + `","eventName":"task.completed","eventVersion":1,"eventTime":"2026-11-22T10:00:00Z","producer":"p","correlationId":"c","data":{},"x":1}`,
		"missing data":    `{"eventId":"` + taskID + `","eventName":"task.completed","eventVersion":1,"eventTime":"2026-11-22T10:00:00Z","producer":"p","correlationId":"c"}`,
		"time not a date": `{"eventId":"` + taskID + `","eventName":"task.completed","eventVersion":1,"eventTime":"yesterday","producer":"p","correlationId":"c","data":{}}`,
	} {
		if _, err := reg.Parse([]byte(body)); err == nil {
			t.Errorf("Parse(%s): accepted", name)
		}
	}
}

func TestNewRegistryRefusesMisplacedSchemas(t *testing.T) {
	env, _ := fs.ReadFile(event.SchemaFiles(), "schemas/envelope.json")
	_, err := event.NewRegistry(fstest.MapFS{
		"schemas/envelope.json":     {Data: env},
		"schemas/task.created.json": {Data: []byte(`{}`)},
	})
	if err == nil {
		t.Error("a schema outside <name>/<version>.json was accepted")
	}
}

func TestCorrelationID(t *testing.T) {
	e, err := event.New(event.WithCorrelationID(context.Background(), "req-1"), "p", "task.completed", 1, t0, struct{}{})
	if err != nil || e.CorrelationID != "req-1" {
		t.Errorf("correlation = %q, %v", e.CorrelationID, err)
	}
	e, _ = event.New(context.Background(), "p", "task.completed", 1, t0.In(time.FixedZone("X", 3600)), struct{}{})
	if e.CorrelationID != e.ID || e.Time.Location() != time.UTC {
		t.Errorf("without a request: correlation %q (id %q), time %v", e.CorrelationID, e.ID, e.Time)
	}
}
