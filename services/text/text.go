// Package text is the input hygiene every context applies to the text a person types (R-SEC-6):
// a length bound, valid UTF-8, no control characters (newline and tab only where a field
// allows them), no bidirectional overrides or isolates, and no value that is blank once
// whitespace and invisible characters are removed. It is pure: no I/O, no state.
package text

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/uberpopug/ates/services/errs"
)

// Rule is what one field accepts. Lengths count characters (runes), not bytes.
type Rule struct {
	// Min is the least number of characters; 0 allows the empty value.
	Min int
	// Max is the most characters; every field has one (R-SEC-6).
	Max int
	// Multiline allows line feeds, CR LF pairs and tabs (task descriptions).
	Multiline bool
	// MayBeBlank allows a value of only whitespace and invisible characters (a search string).
	// Without it such a value is refused even when Min is 0, unless it is empty.
	MayBeBlank bool
}

// Problem is why a value breaks its rule.
type Problem int

// The problems Check finds, in the order it looks for them.
const (
	// OK: the value obeys the rule.
	OK Problem = iota
	// TooLong: more than Max characters (checked first, so a huge value costs little).
	TooLong
	// InvalidUTF8: bytes that are not UTF-8 text.
	InvalidUTF8
	// Control: NUL, another C0 or C1 control character, DEL, or a line break or tab where the
	// field is single-line.
	Control
	// Bidi: a bidirectional embedding, override or isolate (U+202A–U+202E, U+2066–U+2069),
	// which can make text display in an order other than the one stored.
	Bidi
	// TooShort: fewer than Min characters.
	TooShort
	// Blank: nothing visible once whitespace and invisible characters are removed.
	Blank
)

// Check returns the first problem of v under r, or OK.
func Check(v string, r Rule) Problem {
	// A character is at most 4 bytes: a longer value is too long without reading it.
	if len(v) > 4*r.Max {
		return TooLong
	}
	n := 0
	visible := false
	for i := 0; i < len(v); {
		c, size := utf8.DecodeRuneInString(v[i:])
		if c == utf8.RuneError && size <= 1 {
			return InvalidUTF8
		}
		switch {
		case c == '\r':
			// Only as the first half of CR LF, and only where lines are allowed.
			if !r.Multiline || i+1 >= len(v) || v[i+1] != '\n' {
				return Control
			}
		case c == '\n' || c == '\t' || c == '\u2028' || c == '\u2029':
			if !r.Multiline {
				return Control
			}
		case isControl(c):
			return Control
		case IsBidiControl(c):
			return Bidi
		}
		if !visible && !unicode.IsSpace(c) && !IsInvisible(c) {
			visible = true
		}
		n++
		i += size
	}
	switch {
	case n > r.Max:
		return TooLong
	case n < r.Min:
		return TooShort
	case n > 0 && !visible && !r.MayBeBlank:
		return Blank
	}
	return OK
}

// isControl reports C0 controls, DEL and C1 controls (Unicode category Cc).
func isControl(c rune) bool { return c < 0x20 || (c >= 0x7f && c <= 0x9f) }

// IsBidiControl reports the bidirectional embeddings, overrides and isolates: LRE, RLE, PDF,
// LRO, RLO (U+202A–U+202E) and LRI, RLI, FSI, PDI (U+2066–U+2069). The marks LRM, RLM and ALM
// (U+200E, U+200F, U+061C) are not among them: they change no run's order and right-to-left
// names need them (docs/decisions.md).
func IsBidiControl(c rune) bool {
	return (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)
}

// IsInvisible reports characters that show nothing by themselves: zero-width spaces and
// joiners, the word joiner and invisible operators, the byte order mark, the soft hyphen,
// the directional marks, the combining grapheme joiner, the Mongolian vowel separator, the
// Hangul fillers and the variation selectors. They may appear in a value (joiners in emoji
// and Indic scripts, marks in right-to-left names) but do not make it non-blank.
func IsInvisible(c rune) bool {
	switch {
	case c >= 0x200b && c <= 0x200f, // ZWSP, ZWNJ, ZWJ, LRM, RLM
		c >= 0x2060 && c <= 0x2064, // word joiner, invisible operators
		c == 0xfeff, c == 0x00ad, c == 0x034f, c == 0x061c, c == 0x180e,
		c == 0x115f, c == 0x1160, c == 0x3164, c == 0xffa0, // Hangul fillers
		c >= 0xfe00 && c <= 0xfe0f, c >= 0xe0100 && c <= 0xe01ef, // variation selectors
		c >= 0xe0000 && c <= 0xe007f: // tags
		return true
	}
	return false
}

// Message is a person-readable sentence about the problem of the field called label under r,
// e.g. "title must be 1 to 200 characters".
func (p Problem) Message(label string, r Rule) string {
	switch p {
	case TooLong, TooShort:
		if r.Min > 0 {
			return fmt.Sprintf("%s must be %d to %d characters", label, r.Min, r.Max)
		}
		return fmt.Sprintf("%s must be at most %d characters", label, r.Max)
	case InvalidUTF8:
		return fmt.Sprintf("%s is not valid UTF-8 text", label)
	case Control:
		if r.Multiline {
			return fmt.Sprintf("%s must not contain control characters other than line breaks and tabs", label)
		}
		return fmt.Sprintf("%s must be one line without control characters", label)
	case Bidi:
		return fmt.Sprintf("%s must not contain bidirectional override or isolate characters", label)
	case Blank:
		if r.Min > 0 {
			return fmt.Sprintf("%s must be %d to %d characters, not only spaces", label, r.Min, r.Max)
		}
		return fmt.Sprintf("%s must not be blank", label)
	}
	return ""
}

// Field checks v under r and returns nil, or a BAD_USER_INPUT error naming field (the input's
// name, e.g. "fullName") with a message about label (the words a person reads, "full name").
func Field(field, label, v string, r Rule) *errs.Error {
	p := Check(v, r)
	if p == OK {
		return nil
	}
	return errs.InvalidField(field, "%s", p.Message(label, r))
}

// squareBrackets are '[' and ']' and the characters that look like them: fullwidth (U+FF3B,
// U+FF3D), with quill (U+2045, U+2046), mathematical white (U+27E6, U+27E7), white (U+301A,
// U+301B), with underbar or ticks (U+298B–U+2990), vertical presentation forms (U+FE47,
// U+FE48), tortoise shell and small tortoise shell (U+3014, U+3015, U+FE5D, U+FE5E, U+2772,
// U+2773), the bracket pieces (U+23A1–U+23A6) and the ceilings and floors (U+2308–U+230B).
const squareBrackets = "[]［］⁅⁆⟦⟧〚〛⦋⦌⦍⦎⦏⦐﹇﹈〔〕﹝﹞❲❳⎡⎢⎣⎤⎥⎦⌈⌉⌊⌋"

// SquareBracket returns the first square bracket or bracket look-alike in s, if any: a title
// must not carry a [JIRA-ID] however it is spelled (R-TASK-2, R-SEC-6).
func SquareBracket(s string) (rune, bool) {
	for _, c := range s {
		for _, b := range squareBrackets {
			if c == b {
				return c, true
			}
		}
	}
	return 0, false
}
