package graph_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/money"
)

// wsProtocol names one subprotocol's message types (R-API-2).
type wsProtocol struct {
	name                     string
	subscribe, next, errType string
}

var wsProtocols = []wsProtocol{
	{name: "graphql-transport-ws", subscribe: "subscribe", next: "next", errType: "error"},
	{name: "graphql-ws", subscribe: "start", next: "data", errType: "error"},
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsClient is a GraphQL WebSocket client speaking one subprotocol.
type wsClient struct {
	p    wsProtocol
	conn *websocket.Conn
}

// MustDialWS opens /graphql as a WebSocket with the subprotocol.
func MustDialWS(tb testing.TB, g *Gateway, p wsProtocol) *wsClient {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(g.URL, "http") + "/graphql"
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{p.name}})
	if err != nil {
		tb.Fatalf("dialing %s with %s: %v", url, p.name, err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	if conn.Subprotocol() != p.name {
		tb.Fatalf("negotiated subprotocol %q, want %q", conn.Subprotocol(), p.name)
	}
	tb.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	return &wsClient{p: p, conn: conn}
}

func (c *wsClient) send(tb testing.TB, m any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wsjson.Write(ctx, c.conn, m); err != nil {
		tb.Fatalf("sending %v: %v", m, err)
	}
}

// recv returns the next message that is not a keep-alive or ping.
func (c *wsClient) recv(tb testing.TB) (wsMessage, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c.conn, &m); err != nil {
			return m, err
		}
		if m.Type != "ka" && m.Type != "ping" && m.Type != "pong" {
			return m, nil
		}
	}
}

func (c *wsClient) mustRecv(tb testing.TB) wsMessage {
	tb.Helper()
	m, err := c.recv(tb)
	if err != nil {
		tb.Fatalf("reading from the socket: %v", err)
	}
	return m
}

// init sends connection_init with the Authorization payload of R-API-2 and returns the answer.
func (c *wsClient) init(tb testing.TB, token string) wsMessage {
	tb.Helper()
	payload := map[string]any{}
	if token != "" {
		payload["Authorization"] = "Bearer " + token
	}
	c.send(tb, map[string]any{"type": "connection_init", "payload": payload})
	return c.mustRecv(tb)
}

// operation runs one operation and returns its result's data and errors, from a next/data or
// an error message, reading until the operation completes.
func (c *wsClient) operation(tb testing.TB, id, query string) (json.RawMessage, []GQLError) {
	tb.Helper()
	c.send(tb, map[string]any{"id": id, "type": c.p.subscribe, "payload": map[string]any{"query": query}})
	var data json.RawMessage
	var errs []GQLError
	for {
		m := c.mustRecv(tb)
		if m.ID != id {
			tb.Fatalf("message for operation %q while waiting for %q: %+v", m.ID, id, m)
		}
		switch m.Type {
		case c.p.next:
			var r struct {
				Data   json.RawMessage `json:"data"`
				Errors []GQLError      `json:"errors"`
			}
			if err := json.Unmarshal(m.Payload, &r); err != nil {
				tb.Fatalf("payload %s: %v", m.Payload, err)
			}
			data, errs = r.Data, append(errs, r.Errors...)
		case c.p.errType:
			var list []GQLError
			if err := json.Unmarshal(m.Payload, &list); err != nil {
				var one GQLError
				if err := json.Unmarshal(m.Payload, &one); err != nil {
					tb.Fatalf("error payload %s: %v", m.Payload, err)
				}
				list = []GQLError{one}
			}
			return data, append(errs, list...)
		case "complete":
			return data, errs
		default:
			tb.Fatalf("unexpected message %+v", m)
		}
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	w := g.MustUser(t, "popug", identity.Worker)
	for _, p := range wsProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			c := MustDialWS(t, g, p)
			if m := c.init(t, w.Token); m.Type != "connection_ack" {
				t.Fatalf("answer to connection_init = %+v, want connection_ack", m)
			}
			// The connection_init token authenticates the socket's operations.
			data, errs := c.operation(t, "1", `{ me { username role } }`)
			if len(errs) > 0 {
				t.Fatalf("me over the socket: %+v", errs)
			}
			var me struct{ Me account }
			if err := json.Unmarshal(data, &me); err != nil || me.Me.Username != "popug" || me.Me.Role != "WORKER" {
				t.Fatalf("me over the socket = %s (%v)", data, err)
			}

			// A refused subscription is a clean GraphQL error, no stack, no data (R-ACC-10).
			data, errs = c.operation(t, "2", `subscription { balanceChanged(accountId: "`+g.AdminID+`") { balance } }`)
			if len(errs) != 1 {
				t.Fatalf("subscription errors = %+v, want one", errs)
			}
			e := errs[0]
			if e.Extensions["code"] != "FORBIDDEN" || e.Message != "you can only follow your own balance" {
				t.Fatalf("subscription error = %+v", e)
			}
			if d := strings.TrimSpace(string(data)); d != "" && d != "null" {
				t.Fatalf("subscription answered data %s", d)
			}

			// Request errors over the socket carry codes too.
			_, errs = c.operation(t, "3", `{ me { nope } }`)
			if len(errs) == 0 || errs[0].Extensions["code"] != "BAD_USER_INPUT" {
				t.Fatalf("invalid query over the socket: %+v", errs)
			}
		})
	}
}

func TestWebSocketWithoutValidToken(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	for _, p := range wsProtocols {
		for name, token := range map[string]string{"no token": "", "bad token": "not-a-token"} {
			t.Run(p.name+"/"+name, func(t *testing.T) {
				t.Parallel()
				c := MustDialWS(t, g, p)
				m := c.init(t, token)
				if m.Type != "connection_ack" {
					// Refusing the connection outright is acceptable too.
					t.Logf("connection_init answered %+v", m)
					return
				}
				_, errs := c.operation(t, "1", `{ me { id } }`)
				if len(errs) != 1 || errs[0].Extensions["code"] != "UNAUTHENTICATED" {
					t.Fatalf("me over an unauthenticated socket: %+v", errs)
				}
			})
		}
	}
}

func TestWebSocketRefusesForeignOrigin(t *testing.T) {
	t.Parallel()
	g := MustGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(g.URL, "http") + "/graphql"
	h := map[string][]string{"Origin": {"https://evil.example"}}
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: h})
	if err == nil {
		conn.Close(websocket.StatusNormalClosure, "")
		t.Fatal("a cross-origin WebSocket was accepted")
	}
	if !strings.Contains(err.Error(), "403") {
		t.Fatalf("cross-origin dial failed with %v, want a 403 refusal", err)
	}
}

// mustClosedWith reads until the server closes the socket, and checks the close code.
func (c *wsClient) mustClosedWith(tb testing.TB, code websocket.StatusCode) {
	tb.Helper()
	for {
		m, err := c.recv(tb)
		if err == nil {
			tb.Logf("before the close: %+v", m)
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			tb.Fatalf("socket ended with %v (status %d), want close %d", err, got, code)
		}
		return
	}
}

// subscribeBalance starts a balanceChanged subscription and waits until the hub holds it.
func (c *wsClient) subscribeBalance(tb testing.TB, g *Gateway, id string, want int) {
	tb.Helper()
	c.send(tb, map[string]any{"id": id, "type": c.p.subscribe, "payload": map[string]any{
		"query": `subscription { balanceChanged { accountId balance entry { type amount } } }`,
	}})
	waitSubscribers(tb, g, want)
}

// waitSubscribers waits until the gateway's hub holds n subscribers.
func waitSubscribers(tb testing.TB, g *Gateway, n int) {
	tb.Helper()
	waitUntil(tb, fmt.Sprintf("%d subscribers in the hub", n), func() (bool, string) {
		got := g.Hub.Subscribers()
		return got == n, fmt.Sprintf("%d subscribers", got)
	})
}

// waitUntil polls cond until it holds, failing after hubPushTimeout with its last description.
func waitUntil(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(hubPushTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: after %v, %s", what, hubPushTimeout, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebSocketPushes follows a subscription through pushes, a burst and the client's
// completion, in both subprotocols (R-ACC-10).
func TestWebSocketPushes(t *testing.T) {
	t.Parallel()
	for _, p := range wsProtocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t)
			w := g.MustUser(t, "kiwi", identity.Worker)
			id := uuid.MustParse(w.ID)
			other := uuid.New()
			c := MustDialWS(t, g, p)
			if m := c.init(t, w.Token); m.Type != "connection_ack" || len(m.Payload) > 0 {
				t.Fatalf("connection_init answered %+v, want a bare connection_ack (the token is not echoed)", m)
			}
			c.subscribeBalance(t, g, "live", 1)

			const burst = 300
			for i := range burst {
				g.Hub.Publish(other, change(other, 1)) // someone else's: not pushed
				g.Hub.Publish(id, change(id, money.Cents(i)))
			}
			for i := range burst {
				m := c.mustRecv(t)
				var r struct {
					Data struct {
						BalanceChanged struct {
							AccountID string
							Balance   string
						}
					}
				}
				if m.ID != "live" || m.Type != p.next || json.Unmarshal(m.Payload, &r) != nil {
					t.Fatalf("push %d: %+v", i, m)
				}
				if got := r.Data.BalanceChanged; got.AccountID != w.ID || got.Balance != fmt.Sprintf("%d.%02d", i/100, i%100) {
					t.Fatalf("push %d = %+v, want balance %d cents of %s in order", i, got, i, w.ID)
				}
			}

			// The client ends the subscription: the hub lets go of it and pushes stop.
			stop := map[string]string{"graphql-transport-ws": "complete", "graphql-ws": "stop"}[p.name]
			c.send(t, map[string]any{"id": "live", "type": stop})
			waitSubscribers(t, g, 0)
			g.Hub.Publish(id, change(id, 5))
			// The socket still serves operations, and nothing else arrives before their answer.
			if _, errs := c.operation(t, "after", `{ me { id } }`); len(errs) > 0 {
				t.Fatalf("me after completing the subscription: %+v", errs)
			}
		})
	}
}

// TestWebSocketProtocolErrors checks graphql-transport-ws's close codes for misbehaving
// clients, and that the server answers pings.
func TestWebSocketProtocolErrors(t *testing.T) {
	t.Parallel()
	g := MustGateway(t, WithLimits(graph.Limits{InitTimeout: 200 * time.Millisecond}))
	w := g.MustUser(t, "popug", identity.Worker)
	transportWS := wsProtocols[0]
	cases := []struct {
		name string
		run  func(t *testing.T, c *wsClient)
		want websocket.StatusCode
	}{
		{"subscribe before connection_init", func(t *testing.T, c *wsClient) {
			c.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `{ me { id } }`}})
		}, 4401},
		{"no connection_init in time", func(t *testing.T, c *wsClient) {}, 4408},
		{"a second connection_init", func(t *testing.T, c *wsClient) {
			c.init(t, w.Token)
			c.send(t, map[string]any{"type": "connection_init"})
		}, 4429},
		{"an operation id in use", func(t *testing.T, c *wsClient) {
			c.init(t, w.Token)
			q := map[string]any{"query": `subscription { balanceChanged { balance } }`}
			c.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": q})
			c.send(t, map[string]any{"id": "1", "type": "subscribe", "payload": q})
		}, 4409},
		{"not JSON", func(t *testing.T, c *wsClient) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.conn.Write(ctx, websocket.MessageText, []byte("{nope")); err != nil {
				t.Fatal(err)
			}
		}, 4400},
		{"an unknown message type", func(t *testing.T, c *wsClient) {
			c.init(t, w.Token)
			c.send(t, map[string]any{"id": "1", "type": "start"}) // graphql-ws's, not this protocol's
		}, 4400},
		{"connection_init payload not an object", func(t *testing.T, c *wsClient) {
			c.send(t, map[string]any{"type": "connection_init", "payload": "Bearer x"})
		}, 4400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := MustDialWS(t, g, transportWS)
			tc.run(t, c)
			c.mustClosedWith(t, tc.want)
		})
	}

	t.Run("ping", func(t *testing.T) {
		t.Parallel()
		c := MustDialWS(t, g, transportWS)
		c.send(t, map[string]any{"type": "ping"})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var m wsMessage
		if err := wsjson.Read(ctx, c.conn, &m); err != nil || m.Type != "pong" {
			t.Fatalf("answer to ping = %+v (%v), want pong", m, err)
		}
	})
	t.Run("graphql-ws connection_terminate", func(t *testing.T) {
		t.Parallel()
		c := MustDialWS(t, g, wsProtocols[1])
		c.init(t, w.Token)
		c.send(t, map[string]any{"type": "connection_terminate"})
		c.mustClosedWith(t, websocket.StatusNormalClosure)
	})
}

// TestWebSocketClosedAtShutdown checks that the gateway's context ending closes its sockets
// with "going away", ending their subscriptions.
func TestWebSocketClosedAtShutdown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := MustGateway(t, WithContext(ctx))
	w := g.MustUser(t, "popug", identity.Worker)
	c := MustDialWS(t, g, wsProtocols[0])
	c.init(t, w.Token)
	c.subscribeBalance(t, g, "live", 1)
	cancel()
	c.mustClosedWith(t, websocket.StatusGoingAway)
	waitSubscribers(t, g, 0)
}

// TestWebSocketClosedWhenTokenLapses checks that a subscribed socket whose token no longer holds
// — its account deactivated (R-AUTH-5) or the token expired (R-AUTH-4) — gets no further push
// and is closed with 4403, so the client logs in again.
func TestWebSocketClosedWhenTokenLapses(t *testing.T) {
	t.Parallel()
	for name, lapse := range map[string]func(t *testing.T, g *Gateway, w User){
		"account deactivated": func(t *testing.T, g *Gateway, w User) {
			if r := g.Query(t, g.AdminToken, deactivateMut, map[string]any{"id": w.ID}); len(r.Errors) > 0 {
				t.Fatalf("deactivateAccount: %+v", r.Errors)
			}
			g.FeedEvents(t) // the gateway hears of it
		},
		"token expired": func(t *testing.T, g *Gateway, w User) { g.Clock.Advance(2 * time.Hour) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g := MustGateway(t)
			w := g.MustUser(t, "kiwi", identity.Worker)
			id := uuid.MustParse(w.ID)
			c := MustDialWS(t, g, wsProtocols[0])
			c.init(t, w.Token)
			c.subscribeBalance(t, g, "live", 1)
			g.Hub.Publish(id, change(id, 1))
			if m := c.mustRecv(t); m.Type != "next" {
				t.Fatalf("first push: %+v", m)
			}
			lapse(t, g, w)
			g.Hub.Publish(id, change(id, 2))
			c.mustClosedWith(t, 4403)
			waitSubscribers(t, g, 0)
		})
	}
}
