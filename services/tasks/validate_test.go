package tasks

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
)

func ptr[T any](v T) *T { return &v }

// TestNewTaskValidate: R-TASK-2 — title 1–200 characters without '[' or ']', jiraId matching
// ^[A-Z][A-Z0-9]*-[0-9]+$, description 1–10 000 characters; the error names the field.
func TestNewTaskValidate(t *testing.T) {
	t.Parallel()
	const desc = "The beak scanner rejects every third beak."
	tests := []struct {
		name  string
		task  NewTask
		field string // "" = valid
	}{
		// title (R-TASK-2)
		{"title 1 char", NewTask{Title: "x", Description: desc}, ""},
		{"title 200 chars", NewTask{Title: strings.Repeat("t", 200), Description: desc}, ""},
		{"title 200 multibyte runes", NewTask{Title: strings.Repeat("ü", 200), Description: desc}, ""},
		{"title 200 four-byte runes", NewTask{Title: strings.Repeat("🦜", 200), Description: desc}, ""},
		{"title 0 chars", NewTask{Title: "", Description: desc}, "title"},
		{"title 201 chars", NewTask{Title: strings.Repeat("t", 201), Description: desc}, "title"},
		{"title 201 multibyte runes", NewTask{Title: strings.Repeat("ü", 201), Description: desc}, "title"},
		{"title blank", NewTask{Title: "   \t\n", Description: desc}, "title"},
		{"title unicode blank", NewTask{Title: "\u00a0\u2003", Description: desc}, "title"},
		{"title with [", NewTask{Title: "Fix [the scanner", Description: desc}, "title"},
		{"title with ]", NewTask{Title: "Fix the] scanner", Description: desc}, "title"},
		{"title with legacy jira prefix", NewTask{Title: "[UBERPOP-42] Fix the scanner", Description: desc}, "title"},
		{"title invalid UTF-8", NewTask{Title: "Fix \xff scanner", Description: desc}, "title"},
		{"title with surrounding spaces kept", NewTask{Title: "  Fix the scanner  ", Description: desc}, ""},
		// jiraId (R-TASK-2)
		{"jiraId absent", NewTask{Title: "Fix", Description: desc}, ""},
		{"jiraId UBERPOP-42", NewTask{Title: "Fix", JiraID: ptr("UBERPOP-42"), Description: desc}, ""},
		{"jiraId A1-1", NewTask{Title: "Fix", JiraID: ptr("A1-1"), Description: desc}, ""},
		{"jiraId A-0", NewTask{Title: "Fix", JiraID: ptr("A-0"), Description: desc}, ""},
		{"jiraId lower-case", NewTask{Title: "Fix", JiraID: ptr("uberpop-42"), Description: desc}, "jiraId"},
		{"jiraId mixed case", NewTask{Title: "Fix", JiraID: ptr("Uberpop-42"), Description: desc}, "jiraId"},
		{"jiraId missing number", NewTask{Title: "Fix", JiraID: ptr("UBERPOP-"), Description: desc}, "jiraId"},
		{"jiraId missing dash", NewTask{Title: "Fix", JiraID: ptr("UBERPOP42"), Description: desc}, "jiraId"},
		{"jiraId leading digit", NewTask{Title: "Fix", JiraID: ptr("1UBERPOP-42"), Description: desc}, "jiraId"},
		{"jiraId inner space", NewTask{Title: "Fix", JiraID: ptr("UBERPOP -42"), Description: desc}, "jiraId"},
		{"jiraId leading space", NewTask{Title: "Fix", JiraID: ptr(" UBERPOP-42"), Description: desc}, "jiraId"},
		{"jiraId trailing space", NewTask{Title: "Fix", JiraID: ptr("UBERPOP-42 "), Description: desc}, "jiraId"},
		{"jiraId trailing newline", NewTask{Title: "Fix", JiraID: ptr("UBERPOP-42\n"), Description: desc}, "jiraId"},
		{"jiraId in brackets", NewTask{Title: "Fix", JiraID: ptr("[UBERPOP-42]"), Description: desc}, "jiraId"},
		{"jiraId two dashes", NewTask{Title: "Fix", JiraID: ptr("UBER-POP-42"), Description: desc}, "jiraId"},
		{"jiraId empty (service treats as absent)", NewTask{Title: "Fix", JiraID: ptr(""), Description: desc}, "jiraId"},
		// description (R-TASK-2)
		{"description 1 char", NewTask{Title: "Fix", Description: "d"}, ""},
		{"description 10000 chars", NewTask{Title: "Fix", Description: strings.Repeat("d", 10000)}, ""},
		{"description 10000 multibyte runes", NewTask{Title: "Fix", Description: strings.Repeat("ж", 10000)}, ""},
		{"description 0 chars", NewTask{Title: "Fix", Description: ""}, "description"},
		{"description 10001 chars", NewTask{Title: "Fix", Description: strings.Repeat("d", 10001)}, "description"},
		{"description blank", NewTask{Title: "Fix", Description: " \n\t "}, "description"},
		{"description may contain brackets", NewTask{Title: "Fix", Description: "see [UBERPOP-41]"}, ""},
		// the first offending field is named
		{"title before jiraId", NewTask{Title: "", JiraID: ptr("bad"), Description: ""}, "title"},
		{"jiraId before description", NewTask{Title: "Fix", JiraID: ptr("bad"), Description: ""}, "jiraId"},
		// input hygiene (R-SEC-6)
		{"title with fullwidth bracket", NewTask{Title: "［UBERPOP-42］ Fix", Description: desc}, "title"},
		{"title with tortoise shell brackets", NewTask{Title: "〔UBERPOP-42〕 Fix", Description: desc}, "title"},
		{"title with white square brackets", NewTask{Title: "⟦UBERPOP-42⟧ Fix", Description: desc}, "title"},
		{"title with round brackets", NewTask{Title: "(UBERPOP-42) Fix", Description: desc}, ""},
		{"title NUL", NewTask{Title: "Fix\x00", Description: desc}, "title"},
		{"title newline", NewTask{Title: "Fix\nthe scanner", Description: desc}, "title"},
		{"title tab", NewTask{Title: "Fix\tthe scanner", Description: desc}, "title"},
		{"title C1 control", NewTask{Title: "Fix\u0085", Description: desc}, "title"},
		{"title RLO", NewTask{Title: "Fix \u202egninnacs", Description: desc}, "title"},
		{"title isolate", NewTask{Title: "Fix \u2066scanner\u2069", Description: desc}, "title"},
		{"title zero-width only", NewTask{Title: "\u200b\u200d\ufeff", Description: desc}, "title"},
		{"title RLM kept", NewTask{Title: "\u05ea\u05d9\u05e7\u05d5\u05df\u200f", Description: desc}, ""},
		{"jiraId 32 chars", NewTask{Title: "Fix", JiraID: ptr("A-" + strings.Repeat("1", 30)), Description: desc}, ""},
		{"jiraId 33 chars", NewTask{Title: "Fix", JiraID: ptr("A-" + strings.Repeat("1", 31)), Description: desc}, "jiraId"},
		{"jiraId fullwidth letters", NewTask{Title: "Fix", JiraID: ptr("ＵＢＥＲＰＯＰ-42"), Description: desc}, "jiraId"},
		{"jiraId fullwidth brackets", NewTask{Title: "Fix", JiraID: ptr("［UBERPOP-42］"), Description: desc}, "jiraId"},
		{"jiraId fullwidth digits", NewTask{Title: "Fix", JiraID: ptr("UBERPOP-４２"), Description: desc}, "jiraId"},
		{"description newline and tab", NewTask{Title: "Fix", Description: "line one\n\tline two\r\n"}, ""},
		{"description NUL", NewTask{Title: "Fix", Description: "a\x00b"}, "description"},
		{"description bell", NewTask{Title: "Fix", Description: "a\ab"}, "description"},
		{"description RLO", NewTask{Title: "Fix", Description: "a\u202eb"}, "description"},
		{"description zero-width only", NewTask{Title: "Fix", Description: "\u200b\n\u2060"}, "description"},
		{"description invalid UTF-8", NewTask{Title: "Fix", Description: "a\xffb"}, "description"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.task.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want valid", err)
				}
				return
			}
			e, ok := errs.As(err)
			if !ok || e.Code != errs.Invalid || e.Field != tt.field || e.Message == "" {
				t.Fatalf("Validate() = %#v, want BAD_USER_INPUT on field %q", err, tt.field)
			}
		})
	}
}

// TestCompletable: R-TASK-7 — only the current assignee completes an OPEN task; a DONE task
// is a conflict whoever asks.
func TestCompletable(t *testing.T) {
	t.Parallel()
	assignee, other := uuid.New(), uuid.New()
	tests := []struct {
		name   string
		status Status
		actor  identity.Actor
		want   errs.Code
	}{
		{"open, assignee", Open, identity.Actor{AccountID: assignee, Role: identity.Worker}, ""},
		{"open, assignee with another role", Open, identity.Actor{AccountID: assignee, Role: identity.Accountant}, ""},
		{"open, other worker", Open, identity.Actor{AccountID: other, Role: identity.Worker}, errs.Forbidden},
		{"open, admin", Open, identity.Actor{AccountID: other, Role: identity.Admin}, errs.Forbidden},
		{"open, manager", Open, identity.Actor{AccountID: other, Role: identity.Manager}, errs.Forbidden},
		{"done, assignee", Done, identity.Actor{AccountID: assignee, Role: identity.Worker}, errs.Conflict},
		{"done, other", Done, identity.Actor{AccountID: other, Role: identity.Worker}, errs.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := completable(Task{ID: uuid.New(), Status: tt.status, AssigneeID: assignee}, tt.actor)
			if got := errs.CodeOf(err); got != tt.want {
				t.Fatalf("completable = %v (code %q), want code %q", err, got, tt.want)
			}
		})
	}
}

// TestLockedRand: the wrapper passes draws through unchanged and in range.
func TestLockedRand(t *testing.T) {
	t.Parallel()
	r := NewLockedRand(nil)
	for n := 1; n < 50; n++ {
		if v := r.IntN(n); v < 0 || v >= n {
			t.Fatalf("IntN(%d) = %d", n, v)
		}
	}
	seq := NewLockedRand(seqRand{3})
	if v := seq.IntN(10); v != 3 {
		t.Fatalf("IntN through the wrapper = %d, want the wrapped source's 3", v)
	}
}

type seqRand struct{ v int }

func (s seqRand) IntN(int) int { return s.v }

// TestNewTaskValidateReportsEveryField: R-SEC-6 — a task with several offending fields is
// refused with all of them in Meta["fields"], in input order; Field is the first.
func TestNewTaskValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := NewTask{Title: "[X-1] Fix", JiraID: ptr("x"), Description: "\u200b"}.Validate()
	e, ok := errs.As(err)
	if !ok || e.Code != errs.Invalid || e.Field != "title" {
		t.Fatalf("Validate() = %#v, want BAD_USER_INPUT on title", err)
	}
	fields, _ := e.Meta["fields"].([]map[string]string)
	var got []string
	for _, f := range fields {
		if f["message"] == "" {
			t.Errorf("field %s has no message", f["field"])
		}
		got = append(got, f["field"])
	}
	if strings.Join(got, ",") != "title,jiraId,description" {
		t.Fatalf("fields = %v, want title, jiraId, description", got)
	}
	if err := (NewTask{Title: "Fix", Description: "d"}).Validate(); err != nil {
		t.Fatalf("valid task refused: %v", err)
	}
}
