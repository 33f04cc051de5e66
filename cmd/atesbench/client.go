package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// The GraphQL client of the measurements: requests over HTTP, subscriptions over WebSocket
// (R-API-2), as the web app makes them.

// httpClient keeps an idle connection for each of up to 512 concurrent requests, as a web
// app's users each keep theirs: with http.DefaultClient's two, most of the push latency
// measurement's requests in flight would open a new TCP connection, a cost real clients do not
// put on the gateway.
var httpClient = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 512
	return t
}()}

// gqlError is one error of a GraphQL response.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// graphQL posts an operation to base's /graphql and decodes its data into out (when not nil).
// A response with errors is an error.
func graphQL(ctx context.Context, base, token, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("response %d is not JSON: %.200s", res.StatusCode, raw)
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%s: %+v", oneLine(query), r.Errors)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Data, out)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// popug is an account the measurement acts as.
type popug struct {
	Name, ID, Token string
}

func login(ctx context.Context, base, username, password string) (*popug, error) {
	var r struct {
		Login struct {
			Token   string
			Account struct{ ID string }
		}
	}
	if err := graphQL(ctx, base, "", `mutation($u:String!,$p:String!){login(username:$u,password:$p){token account{id}}}`,
		map[string]any{"u": username, "p": password}, &r); err != nil {
		return nil, err
	}
	return &popug{Name: username, ID: r.Login.Account.ID, Token: r.Login.Token}, nil
}

// signUp signs a popug (a WORKER) up and returns it logged in.
func signUp(ctx context.Context, base, name string) (*popug, error) {
	var r struct {
		SignUp struct {
			Token   string
			Account struct{ ID string }
		}
	}
	err := graphQL(ctx, base, "", `mutation($u:String!,$p:String!,$f:String!,$e:String!){
		signUp(input:{username:$u,password:$p,fullName:$f,email:$e}){token account{id}}}`,
		map[string]any{"u": name, "p": name + "-beak-print", "f": "Popug " + name, "e": name + "@uberpopug.com"}, &r)
	if err != nil {
		return nil, err
	}
	return &popug{Name: name, ID: r.SignUp.Account.ID, Token: r.SignUp.Token}, nil
}

// createPopug creates an account of the role as the admin and logs it in.
func createPopug(ctx context.Context, base, adminToken, name, role string) (*popug, error) {
	err := graphQL(ctx, base, adminToken, `mutation($u:String!,$p:String!,$f:String!,$e:String!,$r:Role!){
		createAccount(input:{username:$u,password:$p,fullName:$f,email:$e,role:$r}){id}}`,
		map[string]any{"u": name, "p": name + "-beak-print", "f": "Popug " + name, "e": name + "@uberpopug.com", "r": role}, nil)
	if err != nil {
		return nil, err
	}
	return login(ctx, base, name, name+"-beak-print")
}

// createdTask is what createTask answered.
type createdTask struct {
	ID       string
	Assignee struct{ ID string }
}

// createTask creates task n as the token's bearer, retrying for a while when the task
// tracker's account replica has not caught up with the sign-ups (no assignable popug yet).
func createTask(ctx context.Context, base, token string, n int) (createdTask, error) {
	vars := map[string]any{"t": fmt.Sprintf("Feed the parrots, round %d", n), "j": fmt.Sprintf("UBERPOP-%d", n), "d": "Seeds, then water."}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var r struct{ CreateTask createdTask }
		err := graphQL(ctx, base, token, `mutation($t:String!,$j:String,$d:String!){
			createTask(input:{title:$t,jiraId:$j,description:$d}){id assignee{id}}}`, vars, &r)
		if err == nil {
			return r.CreateTask, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return createdTask{}, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func completeTask(ctx context.Context, base, token, taskID string) error {
	return graphQL(ctx, base, token, `mutation($id:ID!){completeTask(id:$id){id}}`, map[string]any{"id": taskID}, nil)
}

// wsProto names one GraphQL-over-WebSocket subprotocol's message types.
type wsProto struct {
	Name, Subscribe, Next string
}

var (
	transportWS = wsProto{Name: "graphql-transport-ws", Subscribe: "subscribe", Next: "next"}
	legacyWS    = wsProto{Name: "graphql-ws", Subscribe: "start", Next: "data"}
)

func protoNamed(name string) (wsProto, error) {
	for _, p := range []wsProto{transportWS, legacyWS} {
		if p.Name == name {
			return p, nil
		}
	}
	return wsProto{}, fmt.Errorf("subprotocol %q: want %s or %s", name, transportWS.Name, legacyWS.Name)
}

type wsMsg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsConn is one authenticated GraphQL WebSocket; a reader goroutine queues its messages.
type wsConn struct {
	proto wsProto
	conn  *websocket.Conn
	msgs  chan wsMsg
	err   chan error // the read error that ended the reader
}

// dialWS opens base's /graphql with the subprotocol, authenticates with the token in
// connection_init's payload and queues up to buffer unread messages.
func dialWS(ctx context.Context, base string, proto wsProto, token string, buffer int) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(base, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{proto.Name}})
	if err != nil {
		return nil, fmt.Errorf("dialing %s with %s: %w", url, proto.Name, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	conn.SetReadLimit(1 << 20)
	c := &wsConn{proto: proto, conn: conn, msgs: make(chan wsMsg, buffer), err: make(chan error, 1)}
	payload := map[string]any{"Authorization": "Bearer " + token}
	if err := c.send(map[string]any{"type": "connection_init", "payload": payload}); err != nil {
		conn.CloseNow()
		return nil, err
	}
	var ack wsMsg
	if err := wsjson.Read(ctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		conn.CloseNow()
		return nil, fmt.Errorf("connection_init answered %+v (%v), want connection_ack", ack, err)
	}
	go c.read()
	return c, nil
}

func (c *wsConn) read() {
	for {
		var m wsMsg
		if err := wsjson.Read(context.Background(), c.conn, &m); err != nil {
			c.err <- err
			close(c.msgs)
			return
		}
		switch m.Type {
		case "ka", "pong":
		case "ping":
			_ = c.send(map[string]any{"type": "pong"})
		default:
			c.msgs <- m
		}
	}
}

func (c *wsConn) send(m any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return wsjson.Write(ctx, c.conn, m)
}

func (c *wsConn) close() { _ = c.conn.Close(websocket.StatusNormalClosure, "") }

var errTimeout = errors.New("timeout")

// next returns the socket's next message, or errTimeout after the timeout.
func (c *wsConn) next(timeout time.Duration) (wsMsg, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return wsMsg{}, fmt.Errorf("socket closed: %v", <-c.err)
		}
		return m, nil
	case <-t.C:
		return wsMsg{}, errTimeout
	}
}

// push is one balanceChanged payload and when it arrived.
type push struct {
	Entry struct {
		Type string
		Task *struct{ ID string }
	}
	received time.Time
}

const balanceSubscription = `subscription { balanceChanged { accountId balance entry { id type amount balanceAfter description day occurredAt task { id status } } } }`

// balanceSub is a balanceChanged subscription (of the caller's own account) on a socket.
type balanceSub struct {
	name string
	c    *wsConn
	mu   sync.Mutex
	seen int // pushes received
}

func subscribeBalance(name string, c *wsConn) (*balanceSub, error) {
	s := &balanceSub{name: name, c: c}
	err := c.send(map[string]any{"id": "balance", "type": c.proto.Subscribe, "payload": map[string]any{"query": balanceSubscription}})
	return s, err
}

// next returns the next push, or errTimeout after the timeout.
func (s *balanceSub) next(timeout time.Duration) (push, error) {
	m, err := s.c.next(timeout)
	if err != nil {
		return push{}, err
	}
	received := time.Now()
	if m.Type != s.c.proto.Next {
		return push{}, fmt.Errorf("%s: unexpected message %+v", s.name, m)
	}
	var r struct {
		Data   struct{ BalanceChanged push }
		Errors []any
	}
	if err := json.Unmarshal(m.Payload, &r); err != nil || len(r.Errors) > 0 {
		return push{}, fmt.Errorf("%s: push %s (%v)", s.name, m.Payload, err)
	}
	p := r.Data.BalanceChanged
	p.received = received
	s.mu.Lock()
	s.seen++
	s.mu.Unlock()
	return p, nil
}

func (s *balanceSub) pushes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen
}
