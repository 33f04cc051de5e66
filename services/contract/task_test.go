package contract_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
)

func strp(s string) *string { return &s }

// TestSplitLegacyTitle: R-EVT-3 — a leading "[JIRA-ID]", with an optional dash after it, is
// split out of a task.created v1 title; anything else is left as it is.
func TestSplitLegacyTitle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		title    string
		wantID   *string
		wantRest string
	}{
		{"[UBERPOP-42] Fix", strp("UBERPOP-42"), "Fix"},
		{"[UBERPOP-42] - Fix", strp("UBERPOP-42"), "Fix"},
		{"[UBERPOP-42]-Fix", strp("UBERPOP-42"), "Fix"},
		{"[UBERPOP-42]Fix", strp("UBERPOP-42"), "Fix"},
		{"[UBERPOP-42] -   Fix the beak scanner", strp("UBERPOP-42"), "Fix the beak scanner"},
		{"  [A1-7]   Fix  ", strp("A1-7"), "Fix"},
		{"[UBERPOP-42] Fix - the [rest]", strp("UBERPOP-42"), "Fix - the [rest]"},
		{"[UBERPOP-42] Fix [UBERPOP-43]", strp("UBERPOP-42"), "Fix [UBERPOP-43]"},
		// unchanged: the id is not leading, not a Jira id, or all there is
		{"Fix [UBERPOP-42]", nil, "Fix [UBERPOP-42]"},
		{"Fix the beak scanner", nil, "Fix the beak scanner"},
		{"[bad-1] x", nil, "[bad-1] x"},
		{"[UBERPOP] x", nil, "[UBERPOP] x"},
		{"[1UBERPOP-42] x", nil, "[1UBERPOP-42] x"},
		{"UBERPOP-42 Fix", nil, "UBERPOP-42 Fix"},
		{"(UBERPOP-42) Fix", nil, "(UBERPOP-42) Fix"},
		{"[UBERPOP-42]", nil, "[UBERPOP-42]"},
		{"[UBERPOP-42] - ", nil, "[UBERPOP-42] - "},
		{"", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.title, func(t *testing.T) {
			t.Parallel()
			id, rest := contract.SplitLegacyTitle(tt.title)
			if rest != tt.wantRest || !sameString(id, tt.wantID) {
				t.Fatalf("SplitLegacyTitle(%q) = %v, %q; want %v, %q", tt.title, show(id), rest, show(tt.wantID), tt.wantRest)
			}
		})
	}
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func show(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return `"` + *s + `"`
}

// TestDecodeTaskCreated: R-EVT-3 — consumers read both versions of task.created as v2; each
// envelope is a valid event of the registry, as a consumer receives it.
func TestDecodeTaskCreated(t *testing.T) {
	t.Parallel()
	reg := event.MustDefaultRegistry()
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	id := uuid.NewString()
	envelope := func(t *testing.T, version int, data any) event.Envelope {
		t.Helper()
		e, err := event.New(context.Background(), "tasks", contract.TaskCreated, version, at, data)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := reg.Parse(raw) // what a consumer receives (R-EVT-2)
		if err != nil {
			t.Fatalf("the test's own v%d event is invalid: %v", version, err)
		}
		return got
	}
	tests := []struct {
		name    string
		version int
		data    any
		want    contract.TaskCreatedV2
	}{
		{"v1 with a legacy Jira prefix", 1,
			contract.TaskCreatedV1{TaskID: id, Title: "[UBERPOP-42] - Fix the beak scanner", Description: "It scans claws", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "Fix the beak scanner", JiraID: strp("UBERPOP-42"), Description: "It scans claws", CreatedAt: at}},
		{"v1 without a Jira id", 1,
			contract.TaskCreatedV1{TaskID: id, Title: "Fix the beak scanner", Description: "d", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "Fix the beak scanner", Description: "d", CreatedAt: at}},
		{"v1 that is only an id", 1,
			contract.TaskCreatedV1{TaskID: id, Title: "[UBERPOP-42]", Description: "d", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "[UBERPOP-42]", Description: "d", CreatedAt: at}},
		{"v2 with a Jira id", 2,
			contract.TaskCreatedV2{TaskID: id, Title: "Fix", JiraID: strp("UBERPOP-42"), Description: "d", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "Fix", JiraID: strp("UBERPOP-42"), Description: "d", CreatedAt: at}},
		{"v2 without a Jira id", 2,
			contract.TaskCreatedV2{TaskID: id, Title: "Fix", Description: "d", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "Fix", Description: "d", CreatedAt: at}},
		{"v2 keeps a bracket-free title with a dash", 2,
			contract.TaskCreatedV2{TaskID: id, Title: "UBERPOP-42 - Fix", Description: "d", CreatedAt: at},
			contract.TaskCreatedV2{TaskID: id, Title: "UBERPOP-42 - Fix", Description: "d", CreatedAt: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := contract.DecodeTaskCreated(envelope(t, tt.version, tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if got.TaskID != tt.want.TaskID || got.Title != tt.want.Title || !sameString(got.JiraID, tt.want.JiraID) ||
				got.Description != tt.want.Description || !got.CreatedAt.Equal(tt.want.CreatedAt) {
				t.Fatalf("decoded %+v (jiraId %s), want %+v (jiraId %s)", got, show(got.JiraID), tt.want, show(tt.want.JiraID))
			}
		})
	}

	t.Run("the v2 JSON has jiraId null, not missing", func(t *testing.T) {
		t.Parallel()
		e := envelope(t, 2, contract.TaskCreatedV2{TaskID: id, Title: "Fix", Description: "d", CreatedAt: at})
		if !strings.Contains(string(e.Data), `"jiraId":null`) {
			t.Fatalf("data = %s", e.Data)
		}
	})
	t.Run("unknown version", func(t *testing.T) {
		t.Parallel()
		e, err := event.New(context.Background(), "tasks", contract.TaskCreated, 3, at, contract.TaskCreatedV2{TaskID: id, Title: "x", Description: "d", CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := contract.DecodeTaskCreated(e); err == nil || !strings.Contains(err.Error(), "v3") {
			t.Fatalf("DecodeTaskCreated(v3) = %v, want an error naming the version", err)
		}
	})
	t.Run("malformed data", func(t *testing.T) {
		t.Parallel()
		for _, v := range []int{1, 2} {
			e := event.Envelope{ID: uuid.NewString(), Name: contract.TaskCreated, Version: v, Time: at, Data: json.RawMessage(`{"title": 42}`)}
			if _, err := contract.DecodeTaskCreated(e); err == nil {
				t.Fatalf("DecodeTaskCreated(v%d with a numeric title) succeeded", v)
			}
		}
	})
}

// TestTaskLabel: how a task reads in an audit log (R-ACC-3).
func TestTaskLabel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		jira  *string
		title string
		want  string
	}{
		{strp("UBERPOP-42"), "Fix the beak scanner", "UBERPOP-42 Fix the beak scanner"},
		{nil, "Fix the beak scanner", "Fix the beak scanner"},
		{strp(""), "Fix", "Fix"},
	} {
		if got := contract.TaskLabel(tt.jira, tt.title); got != tt.want {
			t.Errorf("TaskLabel(%s, %q) = %q, want %q", show(tt.jira), tt.title, got, tt.want)
		}
	}
}
