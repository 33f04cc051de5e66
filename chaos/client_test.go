package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"
)

// gqlError is one GraphQL error as a client reads it.
type gqlError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code       string   `json:"code"`
		RetryAfter *float64 `json:"retryAfter"`
	} `json:"extensions"`
}

// gqlResult is a GraphQL answer.
type gqlResult struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// Outcomes of a request.
const (
	acked   = "ack"     // answered with data
	refused = "refused" // answered with an error
	unknown = "unknown" // no answer (the connection broke, a timeout): it may or may not have been applied
)

// mutation is one attempt at a mutation, as the client logged it.
type mutation struct {
	Kind       string    `json:"kind"` // "mutation"
	Client     string    `json:"client"`
	Account    string    `json:"account"`
	Op         string    `json:"op"` // createTask, completeTask, shuffleTasks, closeBillingDay
	RequestID  string    `json:"requestId"`
	Gateway    int       `json:"gateway"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Outcome    string    `json:"outcome"`
	Code       string    `json:"code,omitempty"`
	RetryAfter *float64  `json:"retryAfter,omitempty"`
	Message    string    `json:"message,omitempty"`
	TaskID     string    `json:"taskId,omitempty"` // createTask: the new task; completeTask: the task
	Title      string    `json:"title,omitempty"`
	Reassigned int       `json:"reassigned,omitempty"`
	Paid       int       `json:"paidAccounts,omitempty"`
	TotalPaid  int64     `json:"totalPaid,omitempty"`
}

// answer is an error answer to any request (reads too): what the suite counts per fault.
type answer struct {
	At         time.Time
	Client     string
	Code       string
	RetryAfter *float64
	Message    string
}

// recorder keeps what every client did and was told: in memory for the checks and, as JSON
// lines, in clients.jsonl for whoever reads a failed run.
type recorder struct {
	mu        sync.Mutex
	file      *os.File
	enc       *json.Encoder
	mutations []*mutation
	answers   []answer
	sessions  []*session
	pushes    []pushRef // every push in arrival order
	changed   chan struct{}
}

// pushRef is one push for the recovery measurement: when it came, through which gateway, and
// when the change it reports happened.
type pushRef struct {
	At, OccurredAt time.Time
	Gateway        int
	Resync         bool // a RESYNC, not a push
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &recorder{file: f, enc: json.NewEncoder(f), changed: make(chan struct{})}, nil
}

func (r *recorder) close() { r.file.Close() }

// log writes a line to clients.jsonl; the caller holds r.mu.
func (r *recorder) log(v any) { _ = r.enc.Encode(v) }

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log(map[string]any{"kind": "note", "at": time.Now(), "text": fmt.Sprintf(format, args...)})
}

func (r *recorder) addMutation(m *mutation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mutations = append(r.mutations, m)
	r.log(m)
}

func (r *recorder) addAnswer(a answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, a)
	if a.Code != "" {
		r.log(map[string]any{"kind": "error", "at": a.At, "client": a.Client, "code": a.Code, "retryAfter": a.RetryAfter, "message": a.Message})
	}
}

// signal wakes whoever waits for a push; the caller holds r.mu.
func (r *recorder) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// waitPush waits until a push through gateway gw (any, when gw < 0) reports a change that
// happened after since, and returns when it came.
func (r *recorder) waitPush(ctx context.Context, since time.Time, gw int, timeout time.Duration) (time.Time, bool) {
	deadline := time.After(timeout)
	from := 0
	for {
		r.mu.Lock()
		for _, p := range r.pushes[from:] {
			if !p.Resync && p.OccurredAt.After(since) && (gw < 0 || p.Gateway == gw) {
				r.mu.Unlock()
				return p.At, true
			}
		}
		from = len(r.pushes)
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, false
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// firstAck is the end of the first mutation sent after since and acknowledged.
func (r *recorder) firstAck(since time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	for _, m := range r.mutations {
		if m.Outcome == acked && m.Start.After(since) && (first.IsZero() || m.End.Before(first)) {
			first = m.End
		}
	}
	return first, !first.IsZero()
}

// api sends GraphQL requests to the gateways.
type api struct {
	gateways []string
	http     *http.Client
}

func newAPI(gateways []string) *api {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &api{gateways: gateways, http: &http.Client{Transport: t, Timeout: 30 * time.Second}}
}

// post sends one operation to gateway gw with the request id (the correlation id of the events
// it causes, R-EVT-1). An error means no answer came.
func (a *api) post(ctx context.Context, gw int, token, requestID, query string, vars map[string]any) (gqlResult, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.gateways[gw]+"/graphql", bytes.NewReader(body))
	if err != nil {
		return gqlResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", requestID)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := a.http.Do(req)
	if err != nil {
		return gqlResult{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return gqlResult{}, err
	}
	var out gqlResult
	if err := json.Unmarshal(raw, &out); err != nil {
		return gqlResult{}, fmt.Errorf("answer %d is not GraphQL: %.200s", res.StatusCode, raw)
	}
	if len(out.Errors) == 0 && (len(out.Data) == 0 || string(out.Data) == "null") {
		return gqlResult{}, fmt.Errorf("answer %d without data or errors", res.StatusCode)
	}
	return out, nil
}

// actor is one person using aTES: a popug, a manager, the accountant or the admin.
type actor struct {
	name, username, password string
	role                     string
	id, token                string
	api                      *api
	rec                      *recorder
	// gw is the gateway the actor uses now; it moves to the other one when this one does not
	// answer. One goroutine (the actor's loop) changes it.
	gw  int
	rnd *mrand.Rand
	n   int // tasks created
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chaos-" + hex.EncodeToString(b[:])
}

// retryWait is how long to wait before retrying after an UNAVAILABLE answer: its retryAfter,
// bounded.
func retryWait(e gqlError) time.Duration {
	if e.Extensions.RetryAfter == nil {
		return time.Second
	}
	return time.Duration(math.Min(math.Max(*e.Extensions.RetryAfter, 0.2), 5) * float64(time.Second))
}

// mutate sends a mutation until it is acknowledged or refused for good, as a careful client
// does: after UNAVAILABLE it waits retryAfter and tries again; after no answer it tries the
// other gateway. Every attempt is logged. It returns the final attempt and the data.
func (c *actor) mutate(ctx context.Context, op, query string, vars map[string]any, fill func(*mutation)) (*mutation, json.RawMessage) {
	for {
		m := &mutation{Kind: "mutation", Client: c.name, Account: c.id, Op: op, RequestID: newRequestID(), Gateway: c.gw, Start: time.Now()}
		if fill != nil {
			fill(m)
		}
		res, err := c.api.post(ctx, c.gw, c.token, m.RequestID, query, vars)
		m.End = time.Now()
		switch {
		case err != nil:
			m.Outcome, m.Message = unknown, err.Error()
		case len(res.Errors) > 0:
			e := res.Errors[0]
			m.Outcome, m.Code, m.RetryAfter, m.Message = refused, e.Extensions.Code, e.Extensions.RetryAfter, e.Message
			c.rec.addAnswer(answer{At: m.End, Client: c.name, Code: e.Extensions.Code, RetryAfter: e.Extensions.RetryAfter, Message: e.Message})
		default:
			m.Outcome = acked
		}
		if ctx.Err() != nil && m.Outcome == unknown {
			return m, nil // the suite is ending the load: not a fault of aTES
		}
		c.rec.addMutation(m)
		switch {
		case m.Outcome == acked:
			return m, res.Data
		case m.Outcome == unknown:
			c.gw = 1 - c.gw
			if !sleep(ctx, 200*time.Millisecond) {
				return m, nil
			}
		case m.Code == "UNAVAILABLE":
			if !sleep(ctx, retryWait(res.Errors[0])) {
				return m, nil
			}
		default:
			return m, nil
		}
	}
}

// query sends a read until it is answered with data, retrying like mutate; it returns nil when
// ctx ends first or the answer is a refusal other than UNAVAILABLE.
func (c *actor) query(ctx context.Context, gw int, query string, vars map[string]any) (json.RawMessage, error) {
	for {
		res, err := c.api.post(ctx, gw, c.token, newRequestID(), query, vars)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			gw = 1 - gw
			if !sleep(ctx, 200*time.Millisecond) {
				return nil, ctx.Err()
			}
		case len(res.Errors) > 0:
			e := res.Errors[0]
			c.rec.addAnswer(answer{At: time.Now(), Client: c.name, Code: e.Extensions.Code, RetryAfter: e.Extensions.RetryAfter, Message: e.Message})
			if e.Extensions.Code != "UNAVAILABLE" {
				return nil, fmt.Errorf("%s: %s", e.Extensions.Code, e.Message)
			}
			if !sleep(ctx, retryWait(e)) {
				return nil, ctx.Err()
			}
		default:
			return res.Data, nil
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// decode unmarshals a field of a GraphQL answer's data.
func decode(data json.RawMessage, field string, v any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	raw, ok := m[field]
	if !ok {
		return errors.New("no field " + field)
	}
	return json.Unmarshal(raw, v)
}
