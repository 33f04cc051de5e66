package event

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed schemas
var schemaFiles embed.FS

// Registry validates envelopes against the schema files (R-EVT-2).
type Registry struct {
	envelope *jsonschema.Schema
	data     map[string]*jsonschema.Schema // "name/version"

	// The fast path (fast.go): a compiled tree per schema inside its subset, nil otherwise.
	fastEnvelope *fastNode
	fastData     map[string]*fastNode
}

var (
	defaultOnce     sync.Once
	defaultRegistry *Registry
	defaultErr      error
)

// DefaultRegistry returns the registry of the project's schema files, compiled once.
func DefaultRegistry() (*Registry, error) {
	defaultOnce.Do(func() { defaultRegistry, defaultErr = NewRegistry(schemaFiles) })
	return defaultRegistry, defaultErr
}

// MustDefaultRegistry is DefaultRegistry for callers that cannot go on without it.
func MustDefaultRegistry() *Registry {
	r, err := DefaultRegistry()
	if err != nil {
		panic(err)
	}
	return r
}

// NewRegistry compiles the schemas of fsys: schemas/envelope.json and schemas/<name>/<version>.json.
func NewRegistry(fsys fs.FS) (*Registry, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	r := &Registry{data: map[string]*jsonschema.Schema{}, fastData: map[string]*fastNode{}}
	var keys []string
	fast := map[string]*fastNode{}
	err := fs.WalkDir(fsys, "schemas", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		if err := c.AddResource("mem:///"+p, doc); err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		if n, err := compileFast(doc); err == nil {
			fast[p] = n
		}
		if p != "schemas/envelope.json" {
			name, file := path.Split(strings.TrimPrefix(p, "schemas/"))
			version, err := strconv.Atoi(strings.TrimSuffix(file, ".json"))
			if err != nil || version < 1 || strings.Count(name, "/") != 1 {
				return fmt.Errorf("schema %s: want schemas/<name>/<version>.json", p)
			}
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.envelope, err = c.Compile("mem:///schemas/envelope.json"); err != nil {
		return nil, fmt.Errorf("envelope schema: %w", err)
	}
	r.fastEnvelope = fast["schemas/envelope.json"]
	for _, p := range keys {
		s, err := c.Compile("mem:///" + p)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", p, err)
		}
		key := strings.TrimSuffix(strings.TrimPrefix(p, "schemas/"), ".json")
		r.data[key] = s
		if n := fast[p]; n != nil {
			r.fastData[key] = n
		}
	}
	return r, nil
}

// Has reports whether the registry knows the event name and version.
func (r *Registry) Has(name string, version int) bool {
	_, ok := r.data[name+"/"+strconv.Itoa(version)]
	return ok
}

// Validate checks the envelope and its data against their schemas.
func (r *Registry) Validate(e Envelope) error {
	raw, err := e.AppendJSON(nil)
	if err != nil {
		return fmt.Errorf("event %s v%d: encoding: %w", e.Name, e.Version, err)
	}
	return r.Check(raw)
}

// Parse decodes and validates an envelope received as JSON.
func (r *Registry) Parse(raw []byte) (Envelope, error) {
	if e, ok := r.parseFast(raw); ok {
		return e, nil
	}
	return r.parseGeneral(raw)
}

// Check validates an envelope as JSON, as Parse does, without decoding it: the outbox checks
// every event it stores (R-EVT-2) and needs no Envelope back.
func (r *Registry) Check(raw []byte) error {
	if r.scanFast(raw, nil) {
		return nil
	}
	_, err := r.parseGeneral(raw)
	return err
}

// parseFast decodes raw when the fast path finds it valid (fast.go); ok is false when it could
// not tell, or found it invalid, and parseGeneral must decide.
func (r *Registry) parseFast(raw []byte) (e Envelope, ok bool) {
	if !r.scanFast(raw, &e) {
		return Envelope{}, false
	}
	return e, true
}

// scanFast reports whether the fast path finds raw valid, decoding it into e unless e is nil.
func (r *Registry) scanFast(raw []byte, e *Envelope) bool {
	if r.fastEnvelope == nil {
		return false
	}
	s := fastScanner{b: raw, ok: true}
	if s.peek() != '{' {
		return false
	}
	var name, data []byte
	version := 0
	unquote := func(v []byte) string { return string(v[1 : len(v)-1]) }
	s.object(r.fastEnvelope, func(key, v []byte) {
		switch string(key) {
		case "eventId":
			if e != nil {
				e.ID = unquote(v)
			}
		case "eventName":
			name = v[1 : len(v)-1]
		case "eventVersion":
			n, err := strconv.Atoi(string(v))
			if err != nil {
				s.fail()
			}
			version = n
		case "eventTime":
			t, err := time.Parse(time.RFC3339Nano, unquote(v))
			if err != nil {
				s.fail()
			}
			if e != nil {
				e.Time = t
			}
		case "producer":
			if e != nil {
				e.Producer = unquote(v)
			}
		case "correlationId":
			if e != nil {
				e.CorrelationID = unquote(v)
			}
		case "data":
			data = v
		}
	})
	if s.end(); !s.ok {
		return false
	}
	var key [64]byte // name/version, looked up without allocating
	n := r.fastData[string(strconv.AppendInt(append(append(key[:0], name...), '/'), int64(version), 10))]
	if n == nil {
		return false
	}
	d := fastScanner{b: data, ok: true}
	if d.value(n); !d.ok {
		return false
	}
	if e != nil {
		e.Name, e.Version = string(name), version
		e.Data = append(json.RawMessage(nil), data...)
	}
	return true
}

// parseGeneral decodes and validates raw with the general JSON Schema validator.
func (r *Registry) parseGeneral(raw []byte) (Envelope, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return Envelope{}, fmt.Errorf("event is not JSON: %w", err)
	}
	if err := r.envelope.Validate(doc); err != nil {
		return Envelope{}, fmt.Errorf("event envelope invalid: %w", err)
	}
	var e Envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return Envelope{}, fmt.Errorf("event envelope: %w", err)
	}
	s, ok := r.data[e.Name+"/"+strconv.Itoa(e.Version)]
	if !ok {
		return e, fmt.Errorf("event %s v%d: no schema in the registry", e.Name, e.Version)
	}
	data, _ := doc.(map[string]any)["data"]
	if err := s.Validate(data); err != nil {
		return e, fmt.Errorf("event %s v%d %s: data invalid: %w", e.Name, e.Version, e.ID, err)
	}
	return e, nil
}

// SchemaFiles is the embedded schema registry folder (schemas/…).
func SchemaFiles() fs.FS { return schemaFiles }
