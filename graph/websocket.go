package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// The GraphQL WebSocket transport (R-API-2, R-ACC-10): graphql-transport-ws and the legacy
// graphql-ws, the token in connection_init's payload.
//
// It is ours rather than gqlgen's because of what an idle subscriber costs (the target is at most
// 32 KiB of process memory each; docs/benchmarks.md has the figures): gqlgen's transport parks
// four goroutines per subscribed socket. Here a
// socket costs one goroutine blocked in a read; a subscription fed by the Hub has no goroutine
// at all until a push waits (pushTaker), and keep-alives are timers. Framing is
// coder/websocket's, the library gqlgen itself uses, so the binary has one. Operations run
// through the gqlgen executor as with gqlgen's transport, so the server's extensions (limits,
// introspection policy, error presenter) apply unchanged.

const (
	protoTransportWS = "graphql-transport-ws"
	protoLegacyWS    = "graphql-ws"

	// Close codes of graphql-transport-ws.
	closeBadRequest      = 4400
	closeUnauthorized    = 4401
	closeInitTimeout     = 4408
	closeDuplicateID     = 4409
	closeTooManyInitReqs = 4429
	closeForbidden       = 4403
)

// wsTransport serves GraphQL over WebSocket connections.
type wsTransport struct {
	gate
	accept  websocket.AcceptOptions
	present graphql.ErrorPresenterFunc
	recover graphql.RecoverFunc
	// base ends every connection (close 1001) when done: the gateway shuts down.
	base context.Context

	readLimit    int64
	opTimeout    time.Duration // bounds a query or mutation
	initTimeout  time.Duration // connection_init must come within it
	keepAlive    time.Duration // a ka (graphql-ws) or ping (graphql-transport-ws) this often
	writeTimeout time.Duration // a socket that takes longer to accept a message is closed
	// recheck is how often a socket with running operations checks its credential again, so a
	// subscription ends within that time of its token expiring or being revoked (R-SEC-1).
	recheck time.Duration
}

var _ graphql.Transport = (*wsTransport)(nil)

func newWSTransport(cfg Config, lim Limits, g gate) *wsTransport {
	base := cfg.Context
	if base == nil {
		base = context.Background()
	}
	return &wsTransport{
		gate: g,
		accept: websocket.AcceptOptions{
			Subprotocols: []string{protoTransportWS, protoLegacyWS},
			// Same origin always; other origins only when they match ATES_ALLOWED_ORIGINS.
			OriginPatterns:  cfg.AllowedOrigins,
			CompressionMode: websocket.CompressionDisabled,
		},
		present: presentError(cfg.Logger, cfg.Dev), recover: recoverPanic(cfg.Logger), base: base,
		readLimit: lim.BodyBytes, opTimeout: lim.Timeout, initTimeout: lim.InitTimeout, keepAlive: 15 * time.Second,
		writeTimeout: 10 * time.Second, recheck: lim.AuthRecheck,
	}
}

// sameOriginOr accepts requests without an Origin, from the request's own host, or from a host
// matching one of the patterns (path.Match syntax, e.g. "*.example.com").
func sameOriginOr(patterns []string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		for _, p := range patterns {
			if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
				return true
			}
		}
		return false
	}
}

// Supports implements graphql.Transport.
func (t *wsTransport) Supports(r *http.Request) bool { return isWebSocketUpgrade(r) }

// isWebSocketUpgrade reports whether a request asks to become a WebSocket (RFC 6455 §4.1).
func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		slices.ContainsFunc(r.Header.Values("Connection"), func(v string) bool {
			for tok := range strings.SplitSeq(v, ",") {
				if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
					return true
				}
			}
			return false
		})
}

// Do implements graphql.Transport: it upgrades the request and serves the socket on a goroutine
// of its own, returning at once so that the request's goroutine and buffers are freed.
func (t *wsTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ws, err := websocket.Accept(w, r, &t.accept)
	if err != nil {
		return // Accept answered the request with the error (a foreign origin: 403)
	}
	ws.SetReadLimit(t.readLimit)
	proto := ws.Subprotocol()
	if proto == "" {
		proto = protoLegacyWS // what clients that name no subprotocol speak
	}
	// The request's context ends when Do returns; the connection keeps its values. It carries
	// no actor: each operation is authenticated as it starts (R-SEC-1).
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &wsConn{t: t, ws: ws, proto: proto, exec: exec, ctx: ctx, cancel: cancel, headerCred: r.Header.Get("Authorization")}
	c.stopBase = context.AfterFunc(t.base, func() { c.closeWith(websocket.StatusGoingAway, "the server is shutting down") })
	c.timer = time.AfterFunc(t.initTimeout, c.initExpired)
	go c.serve()
}

// wsMessage is a message of either subprotocol.
type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsConn is one socket.
type wsConn struct {
	t        *wsTransport
	ws       *websocket.Conn
	proto    string
	exec     graphql.GraphExecutor
	cancel   context.CancelFunc
	stopBase func() bool

	wmu sync.Mutex // one writer at a time

	// headerCred is the upgrade request's Authorization header, if any.
	headerCred string

	mu  sync.Mutex
	ctx context.Context // the connection's context, without an actor
	// cred is the socket's one credential ("Bearer <token>"), from the upgrade request or
	// connection_init; every operation is authorized with it as it starts, and running ones are
	// ended once it no longer holds (R-SEC-1).
	cred string
	// bound is set when cred was valid at connection_init: from then on the socket acts for
	// that account, and a refusal of cred ends the socket. A socket without a valid credential
	// has nothing to lose: its operations answer UNAUTHENTICATED, as over HTTP.
	bound   bool
	revoked bool // cred was refused after init: the socket is being closed
	inited  bool
	closed  bool
	closing bool        // closeWith started the close handshake
	timer   *time.Timer // the init deadline, then the keep-alive
	recheck *time.Timer // while operations run: checks cred again
	ops     map[string]*wsOperation
}

// serve reads messages until the socket closes, then ends every operation.
func (c *wsConn) serve() {
	defer c.shutdown()
	for {
		kind, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		var m wsMessage
		if kind != websocket.MessageText || json.Unmarshal(data, &m) != nil {
			c.closeWith(closeBadRequest, "invalid message")
			return
		}
		if !c.handle(m) {
			return
		}
	}
}

// handle acts on one message; false when the connection is to close.
func (c *wsConn) handle(m wsMessage) bool {
	switch {
	case m.Type == "connection_init":
		return c.init(m.Payload)
	case m.Type == "subscribe" && c.proto == protoTransportWS, m.Type == "start" && c.proto == protoLegacyWS:
		return c.start(m)
	case m.Type == "complete" && c.proto == protoTransportWS, m.Type == "stop" && c.proto == protoLegacyWS:
		c.stop(m.ID)
		return true
	case m.Type == "ping" && c.proto == protoTransportWS:
		c.write(wsMessage{Type: "pong"})
		return true
	case m.Type == "pong" && c.proto == protoTransportWS:
		return true
	case m.Type == "connection_terminate" && c.proto == protoLegacyWS:
		c.closeWith(websocket.StatusNormalClosure, "terminated")
		return false
	}
	c.closeWith(closeBadRequest, fmt.Sprintf("unexpected message type %q", m.Type))
	return false
}

// init binds the connection to its credential: the Authorization of connection_init's payload
// (R-API-2) or of the upgrade request; when both are given they must be the same. A missing or
// bad credential still opens the connection: its operations answer UNAUTHENTICATED, as over
// HTTP.
func (c *wsConn) init(payload json.RawMessage) bool {
	var p transport.InitPayload
	if len(payload) > 0 && !bytes.Equal(payload, []byte("null")) && json.Unmarshal(payload, &p) != nil {
		c.closeWith(closeBadRequest, "connection_init payload is not an object")
		return false
	}
	cred := p.Authorization()
	if c.headerCred != "" {
		if cred != "" && cred != c.headerCred {
			c.closeWith(closeForbidden, "forbidden: the upgrade request and connection_init carry different credentials")
			return false
		}
		cred = c.headerCred
	}
	c.mu.Lock()
	if c.inited {
		c.mu.Unlock()
		c.closeWith(closeTooManyInitReqs, "too many initialisation requests")
		return false
	}
	c.inited = true
	c.cred = cred
	_, err := actor(c.t.authenticate(c.ctx, cred))
	c.bound = cred != "" && err == nil
	c.timer.Stop()
	c.timer = time.AfterFunc(c.t.keepAlive, c.keepAlive)
	c.mu.Unlock()
	c.write(wsMessage{Type: "connection_ack"})
	if c.proto == protoLegacyWS {
		c.write(wsMessage{Type: "ka"})
	}
	return true
}

func (c *wsConn) initExpired() {
	c.mu.Lock()
	inited := c.inited
	c.mu.Unlock()
	if !inited {
		c.closeWith(closeInitTimeout, "connection initialisation timeout")
	}
}

// keepAlive tells the client the connection lives, and finds dead peers by failed writes. It
// also closes a socket whose token lapsed meanwhile.
func (c *wsConn) keepAlive() {
	if !c.authorized() {
		return
	}
	kind := "ping"
	if c.proto == protoLegacyWS {
		kind = "ka"
	}
	if c.write(wsMessage{Type: kind}) {
		c.mu.Lock()
		c.timer.Reset(c.t.keepAlive)
		c.mu.Unlock()
	}
}

// authorized checks the socket's credential again — its token expires, its account may be
// deactivated, its role changed, its session ended (R-AUTH-5, R-SESS-3) — and when it no longer
// holds ends every running operation with the refusal and closes the socket (4403); the client
// reconnects with a fresh token (R-SEC-1, R-SESS-4).
func (c *wsConn) authorized() bool {
	c.mu.Lock()
	cred, bound := c.cred, c.bound
	c.mu.Unlock()
	if !bound {
		return true
	}
	if _, err := actor(c.t.authenticate(c.ctx, cred)); err != nil {
		c.revoke(err)
		return false
	}
	return true
}

// revoke ends the socket whose credential was refused: every running operation gets the
// refusal as its error, then the socket is closed with 4403.
func (c *wsConn) revoke(reason error) {
	c.mu.Lock()
	if c.revoked || c.closed {
		c.mu.Unlock()
		return
	}
	c.revoked = true
	ids := make([]string, 0, len(c.ops))
	for id := range c.ops {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	e := c.t.present(c.ctx, reason)
	for _, id := range ids {
		c.sendErrors(id, gqlerror.List{e})
	}
	c.closeWith(closeForbidden, "forbidden: the access token is no longer valid")
}

// watch keeps checking the credential while operations run.
func (c *wsConn) watch() {
	if !c.authorized() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ops) > 0 && !c.closed {
		c.recheck.Reset(c.t.recheck)
	}
}

// start begins the operation of a subscribe (start) message; its work runs on a goroutine of
// its own so that the reader stays shallow and keeps reading.
func (c *wsConn) start(m wsMessage) bool {
	c.mu.Lock()
	if !c.inited {
		c.mu.Unlock()
		c.closeWith(closeUnauthorized, "unauthorized: send connection_init first")
		return false
	}
	if _, dup := c.ops[m.ID]; dup || m.ID == "" {
		c.mu.Unlock()
		if m.ID == "" {
			c.closeWith(closeBadRequest, "an operation needs an id")
		} else {
			c.closeWith(closeDuplicateID, "subscriber for "+m.ID+" already exists")
		}
		return false
	}
	// Authorized as it starts, with the rights the credential has now (R-SEC-1).
	authed := c.t.authenticate(c.ctx, c.cred)
	_, authErr := actor(authed)
	ctx, cancel := context.WithCancel(authed)
	op := &wsOperation{c: c, id: m.ID, cancel: cancel}
	if c.ops == nil {
		c.ops = map[string]*wsOperation{}
	}
	c.ops[m.ID] = op
	if c.bound && c.recheck == nil {
		c.recheck = time.AfterFunc(c.t.recheck, c.watch)
	} else if c.bound && len(c.ops) == 1 {
		c.recheck.Reset(c.t.recheck)
	}
	bound := c.bound
	c.mu.Unlock()
	if bound && authErr != nil {
		c.revoke(authErr) // refused at once, as HTTP refuses the token
		return false
	}
	go op.run(withPushTaker(ctx, op), m.Payload, graphql.Now())
	return true
}

// stop ends an operation the client completed; no complete message goes back for it.
func (c *wsConn) stop(id string) {
	c.mu.Lock()
	op := c.ops[id]
	delete(c.ops, id)
	c.mu.Unlock()
	if op != nil {
		op.cancel()
	}
}

// finish ends an operation that completed on the server's side, telling the client unless it
// stopped the operation itself.
func (c *wsConn) finish(op *wsOperation) {
	c.mu.Lock()
	current := c.ops[op.id] == op
	if current {
		delete(c.ops, op.id)
	}
	c.mu.Unlock()
	op.cancel()
	if current {
		c.write(wsMessage{ID: op.id, Type: "complete"})
	}
}

// forget ends an operation that has sent its last message (an error) without a complete.
func (c *wsConn) forget(op *wsOperation) {
	c.mu.Lock()
	if c.ops[op.id] == op {
		delete(c.ops, op.id)
	}
	c.mu.Unlock()
	op.cancel()
}

// write sends one message; false when the socket failed, which closes it.
func (c *wsConn) write(m wsMessage) bool {
	b, err := json.Marshal(m)
	if err != nil {
		c.t.log.Error("encoding a WebSocket message", "type", m.Type, "error", err)
		return false
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	ctx, cancel := context.WithTimeout(c.ctx, c.t.writeTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		_ = c.ws.CloseNow() // the reader fails and shuts the connection down
		return false
	}
	return true
}

// fail ends an operation whose execution panicked with an INTERNAL error (logged, R-API-4).
func (c *wsConn) fail(ctx context.Context, op *wsOperation, p any) {
	c.sendErrors(op.id, gqlerror.List{c.t.present(ctx, c.t.recover(ctx, p))})
	c.finish(op)
}

func (c *wsConn) sendResponse(id string, r *graphql.Response) {
	b, err := json.Marshal(r)
	if err != nil {
		c.t.log.Error("encoding a GraphQL response", "error", err)
		b, _ = json.Marshal(graphql.Response{Errors: gqlerror.List{{Message: "internal error", Extensions: map[string]any{"code": "INTERNAL"}}}})
	}
	kind := "next"
	if c.proto == protoLegacyWS {
		kind = "data"
	}
	c.write(wsMessage{ID: id, Type: kind, Payload: b})
}

func (c *wsConn) sendErrors(id string, list gqlerror.List) {
	b, err := json.Marshal(list)
	if err != nil {
		c.t.log.Error("encoding GraphQL errors", "error", err)
		return
	}
	c.write(wsMessage{ID: id, Type: "error", Payload: b})
}

// closeWith closes the socket with a close frame; the reader then shuts down.
func (c *wsConn) closeWith(code websocket.StatusCode, reason string) {
	c.mu.Lock()
	closed := c.closed
	c.closed, c.closing = true, true
	c.mu.Unlock()
	if closed {
		return
	}
	// The close handshake waits for the peer's answer (at most 5 s): not on the caller, which
	// may be the reader the answer comes through.
	go func() { _ = c.ws.Close(code, reason) }()
}

// shutdown releases what the connection holds once its reader stopped.
func (c *wsConn) shutdown() {
	c.mu.Lock()
	closing := c.closing
	c.closed = true
	c.timer.Stop()
	if c.recheck != nil {
		c.recheck.Stop()
	}
	ops := c.ops
	c.ops = nil
	c.mu.Unlock()
	c.stopBase()
	for _, op := range ops {
		op.cancel()
	}
	c.cancel()
	if !closing {
		_ = c.ws.CloseNow() // the peer left; a close handshake of closeWith's ends the socket itself
	}
}

// wsOperation is one running operation of a connection.
type wsOperation struct {
	c      *wsConn
	id     string
	cancel context.CancelFunc

	// A subscription fed by the Hub (pushTaker): its pushes are taken by drain, started by
	// ready, only while pushes wait; ended tells why the Hub ended it.
	step      func() bool
	ended     func() error
	mu        sync.Mutex
	responses graphql.ResponseHandler // set once the operation was dispatched
	ctx       context.Context
	waiting   bool // ready came before responses was set
}

var _ pushTaker = (*wsOperation)(nil)

// run executes the operation: a query or mutation answers once; a subscription answers per
// push, either taken by drain (a Hub subscription) or read here until it ends.
func (op *wsOperation) run(ctx context.Context, payload json.RawMessage, readStart time.Time) {
	c := op.c
	ctx = graphql.StartOperationTrace(ctx)
	var params graphql.RawParams
	if err := json.Unmarshal(payload, &params); err != nil {
		c.sendErrors(op.id, gqlerror.List{{Message: "the operation payload is not valid JSON", Extensions: map[string]any{"code": "BAD_USER_INPUT"}}})
		c.finish(op)
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: readStart, End: graphql.Now()}
	rc, gerrs := c.exec.CreateOperationContext(ctx, &params)
	if gerrs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), gerrs)
		if errcode.GetErrorKind(gerrs) == errcode.KindProtocol {
			c.sendErrors(op.id, resp.Errors)
		} else {
			c.sendResponse(op.id, resp)
		}
		c.finish(op)
		return
	}
	ctx = graphql.WithOperationContext(ctx, rc)
	defer func() {
		if p := recover(); p != nil {
			c.fail(ctx, op, p)
		}
	}()
	if rc.Operation.Operation != ast.Subscription {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.t.opTimeout)
		defer cancel()
	}
	responses, ctx := c.exec.DispatchOperation(ctx, rc)
	if rc.Operation.Operation == ast.Subscription && op.step != nil {
		op.mu.Lock()
		op.responses, op.ctx = responses, ctx
		waiting := op.waiting
		op.mu.Unlock()
		if waiting {
			op.drain()
		}
		return
	}
	for {
		r := responses(ctx)
		if r == nil {
			break
		}
		c.sendResponse(op.id, r)
	}
	c.finish(op)
}

// take implements pushTaker.
func (op *wsOperation) take(step func() bool, ended func() error) func() {
	op.step, op.ended = step, ended
	return op.ready
}

func (op *wsOperation) ready() {
	op.mu.Lock()
	dispatched := op.responses != nil
	op.waiting = !dispatched
	op.mu.Unlock()
	if dispatched {
		go op.drain()
	}
}

// drain sends the waiting pushes, and completes the operation when the subscription ended.
func (op *wsOperation) drain() {
	defer func() {
		if p := recover(); p != nil {
			op.c.fail(op.ctx, op, p)
		}
	}()
	for op.step() {
		if !op.c.authorized() {
			return
		}
		r := op.responses(op.ctx)
		if r == nil {
			if err := op.ended(); err != nil {
				// Ended by the Hub (RESYNC): the error ends the operation, as the subprotocols
				// define; no complete follows it.
				op.c.sendErrors(op.id, gqlerror.List{op.c.t.present(op.ctx, err)})
				op.c.forget(op)
				return
			}
			op.c.finish(op)
			return
		}
		op.c.sendResponse(op.id, r)
	}
}
