package text

import (
	"strings"
	"testing"

	"github.com/uberpopug/ates/services/errs"
)

// TestCheck: R-SEC-6 — every text field has a maximum length; NUL, C0 and C1 control
// characters are refused (newline and tab only in multi-line fields); bidi overrides and
// isolates are refused; values blank once whitespace and invisible characters are removed are
// refused; invalid UTF-8 is refused.
func TestCheck(t *testing.T) {
	t.Parallel()
	line := Rule{Min: 1, Max: 10}
	multi := Rule{Min: 1, Max: 10, Multiline: true}
	optional := Rule{Max: 10}
	search := Rule{Max: 10, MayBeBlank: true}
	tests := []struct {
		name string
		v    string
		r    Rule
		want Problem
	}{
		{"plain", "Popug", line, OK},
		{"inner spaces", "Po pug", line, OK},
		{"surrounding spaces kept", " Popug ", line, OK},
		{"cyrillic", "Попугай", line, OK},
		{"emoji with joiner", "👩\u200d💻 dev", line, OK},
		{"right-to-left name with mark", "\u05e9\u05dc\u05d5\u05dd\u200f", line, OK},
		{"arabic letter mark", "\u0627\u061c\u0628", line, OK},
		{"exactly max", strings.Repeat("ж", 10), line, OK},
		{"max+1 runes", strings.Repeat("ж", 11), line, TooLong},
		{"huge value refused before reading", strings.Repeat("a", 1<<20), line, TooLong},
		{"empty with min 1", "", line, TooShort},
		{"empty optional", "", optional, OK},
		{"invalid UTF-8", "Po\xffpug", line, InvalidUTF8},
		{"encoded surrogate", "\xed\xa0\x80", line, InvalidUTF8},
		{"NUL", "Po\x00pug", line, Control},
		{"NUL multi-line", "Po\x00pug", multi, Control},
		{"bell", "Po\apug", line, Control},
		{"escape", "\x1b[31mred", line, Control},
		{"DEL", "Po\x7fpug", line, Control},
		{"C1 NEL", "Po\u0085pug", multi, Control},
		{"C1 CSI", "Po\u009bpug", line, Control},
		{"newline single-line", "Po\npug", line, Control},
		{"tab single-line", "Po\tpug", line, Control},
		{"line separator single-line", "Po\u2028pug", line, Control},
		{"newline multi-line", "Po\npug", multi, OK},
		{"tab multi-line", "Po\tpug", multi, OK},
		{"CR LF multi-line", "Po\r\npug", multi, OK},
		{"lone CR multi-line", "Po\rpug", multi, Control},
		{"CR at the end", "Popug\r", multi, Control},
		{"paragraph separator multi-line", "Po\u2029pug", multi, OK},
		{"RLO", "Po\u202epug", line, Bidi},
		{"LRE", "\u202aPopug", line, Bidi},
		{"PDF", "Popug\u202c", multi, Bidi},
		{"RLI", "Po\u2067pug", line, Bidi},
		{"PDI", "Po\u2069pug", line, Bidi},
		{"FSI", "Po\u2068pug", line, Bidi},
		{"blank spaces", "   ", line, Blank},
		{"blank unicode spaces", "\u00a0\u2003\u3000", line, Blank},
		{"blank newlines", " \n\t ", multi, Blank},
		{"zero-width space only", "\u200b", line, Blank},
		{"zero-width mix", "\u200b\u200c\u200d\u2060\ufeff", line, Blank},
		{"marks only", "\u200e\u200f", line, Blank},
		{"soft hyphen only", "\u00ad", line, Blank},
		{"hangul filler only", "\u3164", line, Blank},
		{"variation selector only", "\ufe0f", line, Blank},
		{"tag characters only", "\U000e0041", line, Blank},
		{"blank optional non-empty", " ", optional, Blank},
		{"blank search allowed", " ", search, OK},
		{"zero-width before a letter", "\u200bP", line, OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Check(tt.v, tt.r); got != tt.want {
				t.Fatalf("Check(%q) = %d, want %d", tt.v, got, tt.want)
			}
		})
	}
}

// TestField: a refusal is BAD_USER_INPUT naming the field, with a message about its label.
func TestField(t *testing.T) {
	t.Parallel()
	r := Rule{Min: 1, Max: 200}
	if e := Field("fullName", "full name", "Popug", r); e != nil {
		t.Fatalf("valid value refused: %v", e)
	}
	tests := []struct {
		v, want string
	}{
		{"", "full name must be 1 to 200 characters"},
		{strings.Repeat("n", 201), "full name must be 1 to 200 characters"},
		{"a\x00b", "full name must be one line without control characters"},
		{"a\u202eb", "full name must not contain bidirectional override or isolate characters"},
		{"\u200b", "full name must be 1 to 200 characters, not only spaces"},
		{"\xff", "full name is not valid UTF-8 text"},
	}
	for _, tt := range tests {
		e := Field("fullName", "full name", tt.v, r)
		if e == nil || e.Code != errs.Invalid || e.Field != "fullName" || e.Message != tt.want {
			t.Errorf("Field(%q) = %#v, want %q on fullName", tt.v, e, tt.want)
		}
	}
	if e := Field("jiraId", "jiraId", strings.Repeat("A", 33), Rule{Max: 32}); e == nil || e.Message != "jiraId must be at most 32 characters" {
		t.Errorf("optional field too long: %#v", e)
	}
	if e := Field("note", "note", " ", Rule{Max: 32}); e == nil || e.Message != "note must not be blank" {
		t.Errorf("optional field blank: %#v", e)
	}
	if e := Field("description", "description", "a\x01", Rule{Min: 1, Max: 9, Multiline: true}); e == nil ||
		e.Message != "description must not contain control characters other than line breaks and tabs" {
		t.Errorf("multi-line control: %#v", e)
	}
}

// TestSquareBracket: R-TASK-2, R-SEC-6 — '[' and ']' and their look-alikes are found; other
// brackets and text are not.
func TestSquareBracket(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"[", "]", "［UBERPOP-42］", "Fix ⁅it⁆", "⟦x⟧", "〚x〛", "⦋x⦌", "⦍⦎⦏⦐", "﹇x﹈", "〔x〕", "﹝x﹞", "❲x❳", "⎡x⎤", "⎣⎦⎢⎥", "⌈x⌉", "⌊x⌋"} {
		if _, ok := SquareBracket(s); !ok {
			t.Errorf("SquareBracket(%q) found none", s)
		}
	}
	for _, s := range []string{"Fix (it)", "Fix {it}", "a < b > c", "「quote」", "《title》", "Попугай", ""} {
		if c, ok := SquareBracket(s); ok {
			t.Errorf("SquareBracket(%q) = %q, want none", s, c)
		}
	}
}
