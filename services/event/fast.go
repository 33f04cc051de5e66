package event

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// This file is the registry's fast path. The general JSON Schema validator decodes an envelope
// into maps, then walks them, and every produced and every consumed event pays for it. The fast
// path compiles the schemas' keywords that the registry's files use into a tree, and checks an
// envelope's bytes against it in one pass without building values, so it allocates almost
// nothing (BenchmarkParse; figures in docs/benchmarks.md).
//
// It only ever says "valid". Whenever it meets something it does not handle exactly as the
// general validator would — a string with escapes, a non-integer number, an uncommon date-time
// form, a repeated key — or finds the event invalid, the registry asks the general validator,
// which has the last word and writes the error. A schema using a keyword outside the subset
// below gets no fast tree at all. So the fast path can make validation cheaper, never more
// permissive; FuzzFastPathNeverAcceptsMore checks exactly that.

// fastType is a bit set of JSON Schema types.
type fastType uint8

const (
	tString fastType = 1 << iota
	tInteger
	tNumber
	tBoolean
	tNull
	tObject
	tArray
)

var typeNames = map[string]fastType{
	"string": tString, "integer": tInteger, "number": tNumber, "boolean": tBoolean,
	"null": tNull, "object": tObject, "array": tArray,
}

// fastNode is one compiled schema of the subset.
type fastNode struct {
	types fastType // 0: any type

	// objects
	props    map[string]*fastNode
	index    map[string]int // property name → bit in the seen set
	required uint64         // bits of the required properties
	noExtra  bool           // additionalProperties: false

	// strings
	minLen, maxLen int // -1: none
	pattern        *regexp.Regexp
	// matched is the last string found to match pattern: most events in a row share their name
	// (a batch of one event), so the envelope's name pattern is rarely run.
	matched atomic.Pointer[string]
	format  string // "", "uuid", "date", "date-time"
	enum    []string

	// integers
	min, max   *int64
	multipleOf int64 // 0: none
}

// fastKeywords are the keywords the fast path understands; annotations change nothing.
var fastKeywords = map[string]bool{
	"$schema": true, "title": true, "description": true, "type": true, "required": true,
	"properties": true, "additionalProperties": true, "enum": true, "format": true,
	"pattern": true, "minLength": true, "maxLength": true, "minimum": true, "maximum": true,
	"multipleOf": true,
}

// compileFast compiles a decoded schema document (as jsonschema.UnmarshalJSON returns it) into a
// fast tree, or reports why the schema is outside the subset.
func compileFast(doc any) (*fastNode, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema is not an object")
	}
	n := &fastNode{minLen: -1, maxLen: -1}
	for k := range m {
		if !fastKeywords[k] {
			return nil, fmt.Errorf("keyword %q", k)
		}
	}
	switch t := m["type"].(type) {
	case nil:
	case string:
		if n.types = typeNames[t]; n.types == 0 {
			return nil, fmt.Errorf("type %q", t)
		}
	case []any:
		for _, v := range t {
			s, _ := v.(string)
			if typeNames[s] == 0 {
				return nil, fmt.Errorf("type %v", v)
			}
			n.types |= typeNames[s]
		}
	default:
		return nil, fmt.Errorf("type %v", t)
	}
	if props, ok := m["properties"]; ok {
		pm, ok := props.(map[string]any)
		if !ok || len(pm) > 64 {
			return nil, fmt.Errorf("properties")
		}
		n.props, n.index = map[string]*fastNode{}, map[string]int{}
		for name, sub := range pm {
			c, err := compileFast(sub)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			n.index[name] = len(n.props)
			n.props[name] = c
		}
	}
	if req, ok := m["required"]; ok {
		list, _ := req.([]any)
		for _, r := range list {
			s, _ := r.(string)
			i, ok := n.index[s]
			if !ok {
				// required but not described: the fast path cannot see it; leave it to the
				// general validator.
				return nil, fmt.Errorf("required %q without a property schema", s)
			}
			n.required |= 1 << i
		}
	}
	if ap, ok := m["additionalProperties"]; ok {
		b, ok := ap.(bool)
		if !ok {
			return nil, fmt.Errorf("additionalProperties")
		}
		n.noExtra = !b
	}
	if e, ok := m["enum"]; ok {
		list, _ := e.([]any)
		for _, v := range list {
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("enum of non-strings")
			}
			n.enum = append(n.enum, s)
		}
		if n.enum == nil {
			return nil, fmt.Errorf("enum")
		}
	}
	if f, ok := m["format"]; ok {
		switch f {
		case "uuid", "date", "date-time":
			n.format = f.(string)
		default:
			return nil, fmt.Errorf("format %v", f)
		}
	}
	if p, ok := m["pattern"]; ok {
		s, _ := p.(string)
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
		n.pattern = re
	}
	var err error
	if n.minLen, err = intKeyword(m, "minLength"); err != nil {
		return nil, err
	}
	if n.maxLen, err = intKeyword(m, "maxLength"); err != nil {
		return nil, err
	}
	for _, k := range []struct {
		name string
		dst  **int64
	}{{"minimum", &n.min}, {"maximum", &n.max}} {
		if v, err := intKeyword(m, k.name); err != nil {
			return nil, err
		} else if v >= 0 || m[k.name] != nil {
			x := int64(v)
			*k.dst = &x
		}
	}
	if v, err := intKeyword(m, "multipleOf"); err != nil {
		return nil, err
	} else if v > 0 {
		n.multipleOf = int64(v)
	} else if m["multipleOf"] != nil {
		return nil, fmt.Errorf("multipleOf")
	}
	return n, nil
}

// intKeyword reads an integral keyword value; -1 when absent.
func intKeyword(m map[string]any, k string) (int, error) {
	v, ok := m[k]
	if !ok {
		return -1, nil
	}
	s := fmt.Sprint(v) // json.Number or a number type
	i, err := strconv.Atoi(s)
	if err != nil || i < math.MinInt32 || i > math.MaxInt32 {
		return 0, fmt.Errorf("%s %v is not a small integer", k, v)
	}
	return i, nil
}

// fastScanner walks JSON text; ok turns false at the first thing the fast path does not accept.
type fastScanner struct {
	b   []byte
	pos int
	ok  bool
}

func (s *fastScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (s *fastScanner) peek() byte {
	s.ws()
	if s.pos >= len(s.b) {
		return 0
	}
	return s.b[s.pos]
}

func (s *fastScanner) fail() { s.ok = false }

// str reads a string without escapes, control characters or invalid UTF-8 and returns its
// contents (a view into the input).
func (s *fastScanner) str() []byte {
	if s.peek() != '"' {
		s.fail()
		return nil
	}
	start := s.pos + 1
	ascii := true
	for i := start; i < len(s.b); i++ {
		c := s.b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			v := s.b[start:i]
			if !ascii && !utf8.Valid(v) {
				s.fail()
			}
			return v
		case c == '\\' || c < 0x20:
			s.fail()
			return nil
		case c >= 0x80:
			ascii = false
		}
	}
	s.fail()
	return nil
}

// literal consumes word (true, false, null).
func (s *fastScanner) literal(word string) {
	if len(s.b)-s.pos < len(word) || string(s.b[s.pos:s.pos+len(word)]) != word {
		s.fail()
		return
	}
	s.pos += len(word)
}

// integer reads an integer literal that fits int64 (no fraction, no exponent).
func (s *fastScanner) integer() int64 {
	start := s.pos
	i := s.pos
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	digits := i
	for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
		i++
	}
	if i == digits || (s.b[digits] == '0' && i-digits > 1) {
		s.fail()
		return 0
	}
	if i < len(s.b) && (s.b[i] == '.' || s.b[i] == 'e' || s.b[i] == 'E') {
		s.fail()
		return 0
	}
	v, err := strconv.ParseInt(string(s.b[start:i]), 10, 64)
	if err != nil {
		s.fail()
		return 0
	}
	s.pos = i
	return v
}

// skip consumes any value of the subset without a schema to check it against.
func (s *fastScanner) skip() { s.value(anyValue) }

// anyValue is the schema that accepts every value.
var anyValue = &fastNode{minLen: -1, maxLen: -1}

// value checks the next value against n.
func (s *fastScanner) value(n *fastNode) {
	if !s.ok {
		return
	}
	switch c := s.peek(); {
	case c == '"':
		v := s.str()
		if s.ok && (n.types == 0 || n.types&tString != 0) {
			s.checkString(n, v)
		} else {
			s.fail()
		}
	case c == '{':
		if (n.types != 0 && n.types&tObject == 0) || n.enum != nil {
			s.fail()
			return
		}
		s.object(n, nil)
	case c == '[':
		if (n.types != 0 && n.types&tArray == 0) || n.enum != nil {
			s.fail()
			return
		}
		s.pos++
		if s.peek() == ']' {
			s.pos++
			return
		}
		for s.ok {
			s.skip()
			switch s.peek() {
			case ',':
				s.pos++
			case ']':
				s.pos++
				return
			default:
				s.fail()
			}
		}
	case c == 't' || c == 'f':
		if (n.types != 0 && n.types&tBoolean == 0) || n.enum != nil {
			s.fail()
			return
		}
		if c == 't' {
			s.literal("true")
		} else {
			s.literal("false")
		}
	case c == 'n':
		if (n.types != 0 && n.types&tNull == 0) || n.enum != nil {
			s.fail()
			return
		}
		s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		if (n.types != 0 && n.types&(tInteger|tNumber) == 0) || n.enum != nil {
			s.fail()
			return
		}
		v := s.integer()
		if !s.ok ||
			(n.min != nil && v < *n.min) || (n.max != nil && v > *n.max) ||
			(n.multipleOf != 0 && v%n.multipleOf != 0) {
			s.fail()
		}
	default:
		s.fail()
	}
}

func (s *fastScanner) checkString(n *fastNode, v []byte) {
	if n.minLen >= 0 || n.maxLen >= 0 {
		l := utf8.RuneCount(v)
		if (n.minLen >= 0 && l < n.minLen) || (n.maxLen >= 0 && l > n.maxLen) {
			s.fail()
			return
		}
	}
	if n.enum != nil {
		found := false
		for _, e := range n.enum {
			if e == string(v) {
				found = true
				break
			}
		}
		if !found {
			s.fail()
			return
		}
	}
	switch n.format {
	case "uuid":
		if !isUUID(v) {
			s.fail()
			return
		}
	case "date":
		if !isDate(v) {
			s.fail()
			return
		}
	case "date-time":
		if !isCanonicalDateTime(v) {
			s.fail()
			return
		}
	}
	if n.pattern != nil {
		if last := n.matched.Load(); last != nil && *last == string(v) {
			return
		}
		if !n.pattern.Match(v) {
			s.fail()
			return
		}
		m := string(v)
		n.matched.Store(&m)
	}
}

// object checks an object against n; member, when not nil, sees every member's key and value
// bytes once they are checked.
func (s *fastScanner) object(n *fastNode, member func(key, value []byte)) {
	s.pos++ // '{'
	var seen uint64
	if s.peek() == '}' {
		s.pos++
	} else {
		for s.ok {
			key := s.str()
			if !s.ok || s.peek() != ':' {
				s.fail()
				return
			}
			s.pos++
			s.ws()
			start := s.pos
			if sub, ok := n.props[string(key)]; ok {
				bit := uint64(1) << n.index[string(key)]
				if seen&bit != 0 {
					s.fail() // a repeated key: the general validator keeps the last one
					return
				}
				seen |= bit
				s.value(sub)
			} else {
				// Not described, so not validated, by either validator: a repeat changes nothing.
				if n.noExtra {
					s.fail()
					return
				}
				s.skip()
			}
			if !s.ok {
				return
			}
			if member != nil {
				member(key, s.b[start:s.pos])
			}
			switch s.peek() {
			case ',':
				s.pos++
			case '}':
				s.pos++
				if seen&n.required != n.required {
					s.fail()
				}
				return
			default:
				s.fail()
				return
			}
		}
		return
	}
	if n.required != 0 {
		s.fail()
	}
}

// end accepts only trailing white space.
func (s *fastScanner) end() {
	if s.peek() != 0 {
		s.fail()
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isUUID is the "uuid" format: 8-4-4-4-12 hexadecimal digits.
func isUUID(v []byte) bool {
	if len(v) != 36 {
		return false
	}
	for i, c := range v {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// isDate is the "date" format: YYYY-MM-DD naming a real day.
// isDate accepts YYYY-MM-DD naming a real day (the form time.DateOnly parses).
func isDate(v []byte) bool {
	if len(v) != 10 || v[4] != '-' || v[7] != '-' {
		return false
	}
	y, ok1 := digits(v[0:4])
	m, ok2 := digits(v[5:7])
	d, ok3 := digits(v[8:10])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func digits(v []byte) (int, bool) {
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// isCanonicalDateTime accepts the date-times Go writes for UTC times,
// YYYY-MM-DDTHH:MM:SS[.fraction]Z, with a real day and an hour, minute and second in range
// (no leap second). Every other form goes to the general validator.
func isCanonicalDateTime(v []byte) bool {
	if len(v) < 20 || v[10] != 'T' || v[len(v)-1] != 'Z' || !isDate(v[:10]) {
		return false
	}
	t := v[11 : len(v)-1]
	if len(t) < 8 || t[2] != ':' || t[5] != ':' {
		return false
	}
	h, ok1 := digits(t[0:2])
	m, ok2 := digits(t[3:5])
	sec, ok3 := digits(t[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 59 {
		return false
	}
	if frac := t[8:]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 {
			return false
		}
		if _, ok := digits(frac[1:]); !ok {
			return false
		}
	}
	return true
}
