package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/uberpopug/ates/services/money"
)

// Live subscriptions (R-ACC-10, R-LIVE-1) over graphql-transport-ws, the token in
// connection_init's payload (R-API-2).

const balanceSubscription = `subscription($id: ID) { balanceChanged(accountId: $id) {
	accountId balance entry { id type amount balanceAfter occurredAt } } }`

const boardSubscription = `subscription($id: ID) { taskChanged(assigneeId: $id) {
	kind occurredAt task { id } previousAssignee { id } } }`

// Kinds of subscription.
const (
	balanceFeed = "balance"
	boardFeed   = "board"
)

// follow is one subscription a socket holds: a kind and whom it follows ("" all).
type follow struct {
	Kind    string
	Account string
}

// session is one run of a subscription: from its subscribe message until the server ends it
// (RESYNC, an error, complete) or the socket breaks; "live" when it still runs at the end.
type session struct {
	Kind      string    `json:"kind"` // "session"
	ID        int       `json:"id"`
	Socket    string    `json:"socket"`
	Feed      string    `json:"feed"`
	Follow    string    `json:"follow,omitempty"`
	Gateway   int       `json:"gateway"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	EndReason string    `json:"endReason"`
	// Refetched is when the client read the current state again after subscribing (zero: it
	// did not get to); a client does so on every new subscription, so a RESYNC is followed by
	// one.
	Refetched time.Time         `json:"refetched"`
	Balances  []balancePush     `json:"-"`
	Board     []boardPush       `json:"-"`
	Baseline  map[string]string `json:"-"` // balance: account → newest entry id at the refetch
}

// balancePush is one balanceChanged push.
type balancePush struct {
	At           time.Time
	Account      string
	EntryID      string
	Type         string
	Amount       int64
	BalanceAfter int64
	Balance      int64
	OccurredAt   time.Time
}

// boardPush is one taskChanged push.
type boardPush struct {
	At         time.Time
	Kind       string
	TaskID     string
	Previous   string
	OccurredAt time.Time
}

// socket is one client's WebSocket and the subscriptions it keeps: it reconnects when the
// socket breaks (to the other gateway unless pinned) and subscribes again after every end.
type socket struct {
	name    string
	owner   *actor
	follows []follow
	gw      int
	pinned  bool
}

func (r *recorder) newSession(s *socket, f follow, gw int) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess := &session{Kind: "session", ID: len(r.sessions) + 1, Socket: s.name, Feed: f.Kind, Follow: f.Account, Gateway: gw, Start: time.Now()}
	r.sessions = append(r.sessions, sess)
	return sess
}

func (r *recorder) endSession(sess *session, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !sess.End.IsZero() {
		return
	}
	sess.End, sess.EndReason = time.Now(), reason
	if reason == "RESYNC" {
		r.pushes = append(r.pushes, pushRef{At: sess.End, Gateway: sess.Gateway, Resync: true})
	}
	r.log(sess)
}

func (r *recorder) balancePush(sess *session, p balancePush) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess.Balances = append(sess.Balances, p)
	r.pushes = append(r.pushes, pushRef{At: p.At, OccurredAt: p.OccurredAt, Gateway: sess.Gateway})
	r.log(map[string]any{"kind": "push", "session": sess.ID, "at": p.At, "account": p.Account, "entry": p.EntryID, "type": p.Type, "amount": p.Amount, "balanceAfter": p.BalanceAfter})
	r.signal()
}

func (r *recorder) boardPush(sess *session, p boardPush) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess.Board = append(sess.Board, p)
	r.pushes = append(r.pushes, pushRef{At: p.At, OccurredAt: p.OccurredAt, Gateway: sess.Gateway})
	r.log(map[string]any{"kind": "push", "session": sess.ID, "at": p.At, "task": p.TaskID, "change": p.Kind})
	r.signal()
}

func (r *recorder) refetched(sess *session, baseline map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sess.Refetched, sess.Baseline = time.Now(), baseline
	r.log(map[string]any{"kind": "refetch", "session": sess.ID, "at": sess.Refetched})
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// run keeps the socket's subscriptions until ctx ends; then the live sessions stay open (the
// checks read them as "live").
func (s *socket) run(ctx context.Context, rec *recorder, gateways []string) {
	for ctx.Err() == nil {
		conn, err := s.dial(ctx, gateways[s.gw])
		if err != nil {
			if ctx.Err() == nil {
				rec.note("%s: connecting to gateway %d: %v", s.name, s.gw+1, err)
			}
			if !s.pinned {
				s.gw = 1 - s.gw
			}
			sleep(ctx, 300*time.Millisecond)
			continue
		}
		s.serve(ctx, conn, rec)
		if !s.pinned {
			s.gw = 1 - s.gw
		}
	}
}

func (s *socket) dial(ctx context.Context, base string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(base, "http")+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	conn.SetReadLimit(1 << 20)
	if err := wsjson.Write(dctx, conn, map[string]any{"type": "connection_init",
		"payload": map[string]any{"Authorization": "Bearer " + s.owner.token}}); err != nil {
		conn.CloseNow()
		return nil, err
	}
	var ack wsMessage
	if err := wsjson.Read(dctx, conn, &ack); err != nil || ack.Type != "connection_ack" {
		conn.CloseNow()
		return nil, fmt.Errorf("connection_init answered %q: %v", ack.Type, err)
	}
	return conn, nil
}

// serve runs the subscriptions on one connected socket until it breaks or ctx ends.
func (s *socket) serve(ctx context.Context, conn *websocket.Conn, rec *recorder) {
	msgs := make(chan wsMessage, 256)
	readErr := make(chan error, 1)
	go func() {
		for {
			var m wsMessage
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				readErr <- err
				close(msgs)
				return
			}
			msgs <- m
		}
	}()
	defer conn.CloseNow()
	write := func(m any) bool {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return wsjson.Write(wctx, conn, m) == nil
	}
	type op struct {
		f    follow
		sess *session
	}
	ops := map[string]*op{}
	restart := make(chan follow, len(s.follows))
	seq := 0
	subscribe := func(f follow) bool {
		seq++
		id := fmt.Sprintf("%s-%d", f.Kind, seq)
		sess := rec.newSession(s, f, s.gw)
		ops[id] = &op{f: f, sess: sess}
		query := balanceSubscription
		if f.Kind == boardFeed {
			query = boardSubscription
		}
		vars := map[string]any{}
		if f.Account != "" {
			vars["id"] = f.Account
		}
		if !write(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query, "variables": vars}}) {
			return false
		}
		// Like a client, read the current state after subscribing: what came before the
		// subscription is there, what comes after it is pushed.
		go s.refetch(ctx, rec, sess)
		return true
	}
	endAll := func(reason string) {
		for _, o := range ops {
			rec.endSession(o.sess, reason)
		}
	}
	for _, f := range s.follows {
		if !subscribe(f) {
			endAll("closed")
			return
		}
	}
	for {
		select {
		case <-ctx.Done():
			return // the sessions stay live: the checks read them so
		case f := <-restart:
			if !subscribe(f) {
				endAll("closed")
				return
			}
		case m, ok := <-msgs:
			if !ok {
				endAll("closed")
				return
			}
			switch m.Type {
			case "ping":
				write(map[string]any{"type": "pong"})
			case "next":
				o := ops[m.ID]
				if o == nil {
					continue
				}
				if code := s.push(rec, o.sess, m.Payload); code != "" {
					// A push that came as an error (its task could not be read): the client
					// knows it missed a change, so it does what RESYNC asks — stops the
					// subscription, subscribes again and refetches.
					delete(ops, m.ID)
					rec.endSession(o.sess, "push error "+code)
					if !write(map[string]any{"id": m.ID, "type": "complete"}) || !subscribe(o.f) {
						endAll("closed")
						return
					}
				}
			case "error", "complete":
				o := ops[m.ID]
				if o == nil {
					continue
				}
				delete(ops, m.ID)
				reason := "complete"
				if m.Type == "error" {
					reason = "error"
					var list []gqlError
					if json.Unmarshal(m.Payload, &list) == nil && len(list) > 0 {
						reason = list[0].Extensions.Code
					}
				}
				rec.endSession(o.sess, reason)
				if reason == "RESYNC" {
					if !subscribe(o.f) {
						endAll("closed")
						return
					}
					continue
				}
				rec.note("%s: subscription %s ended: %s %s", s.name, m.ID, m.Type, m.Payload)
				f := o.f
				time.AfterFunc(time.Second, func() { restart <- f })
			}
		}
	}
}

// push records one next message; for one that carries errors instead of a push it returns the
// error's code.
func (s *socket) push(rec *recorder, sess *session, payload json.RawMessage) string {
	now := time.Now()
	var r struct {
		Data struct {
			BalanceChanged *struct {
				AccountID string
				Balance   string
				Entry     struct {
					ID, Type, Amount, BalanceAfter string
					OccurredAt                     time.Time
				}
			}
			TaskChanged *struct {
				Kind             string
				OccurredAt       time.Time
				Task             struct{ ID string }
				PreviousAssignee *struct{ ID string }
			}
		}
		Errors []gqlError
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		rec.note("%s: an unreadable push: %s", s.name, payload)
		return "UNREADABLE"
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		rec.addAnswer(answer{At: now, Client: s.name + " (push)", Code: e.Extensions.Code, RetryAfter: e.Extensions.RetryAfter, Message: e.Message})
		if e.Extensions.Code == "" {
			return "NO CODE"
		}
		return e.Extensions.Code
	}
	if b := r.Data.BalanceChanged; b != nil {
		amount, _ := money.Parse(b.Entry.Amount)
		after, _ := money.Parse(b.Entry.BalanceAfter)
		balance, _ := money.Parse(b.Balance)
		rec.balancePush(sess, balancePush{At: now, Account: b.AccountID, EntryID: b.Entry.ID, Type: b.Entry.Type,
			Amount: int64(amount), BalanceAfter: int64(after), Balance: int64(balance), OccurredAt: b.Entry.OccurredAt})
	}
	if c := r.Data.TaskChanged; c != nil {
		p := boardPush{At: now, Kind: c.Kind, TaskID: c.Task.ID, OccurredAt: c.OccurredAt}
		if c.PreviousAssignee != nil {
			p.Previous = c.PreviousAssignee.ID
		}
		rec.boardPush(sess, p)
	}
	return ""
}

// refetch reads what the subscription follows, as a client does after (re)subscribing.
func (s *socket) refetch(ctx context.Context, rec *recorder, sess *session) {
	type entries struct {
		Edges []struct{ Node struct{ ID string } }
	}
	switch {
	case sess.Feed == balanceFeed && sess.Follow != "":
		data, err := s.owner.query(ctx, sess.Gateway, `query($id: ID!) { billingAccount(accountId: $id) { balance entries(first: 1) { edges { node { id } } } } }`,
			map[string]any{"id": sess.Follow})
		if err != nil {
			return
		}
		var a struct{ Entries entries }
		if decode(data, "billingAccount", &a) != nil {
			return
		}
		base := map[string]string{sess.Follow: ""}
		if len(a.Entries.Edges) > 0 {
			base[sess.Follow] = a.Entries.Edges[0].Node.ID
		}
		rec.refetched(sess, base)
	case sess.Feed == balanceFeed:
		data, err := s.owner.query(ctx, sess.Gateway, `{ billingAccounts(first: 100) { edges { node { account { id } entries(first: 1) { edges { node { id } } } } } } }`, nil)
		if err != nil {
			return
		}
		var c struct {
			Edges []struct {
				Node struct {
					Account struct{ ID string }
					Entries entries
				}
			}
		}
		if decode(data, "billingAccounts", &c) != nil {
			return
		}
		base := map[string]string{}
		for _, e := range c.Edges {
			base[e.Node.Account.ID] = ""
			if len(e.Node.Entries.Edges) > 0 {
				base[e.Node.Account.ID] = e.Node.Entries.Edges[0].Node.ID
			}
		}
		rec.refetched(sess, base)
	default:
		vars := map[string]any{}
		if sess.Follow != "" {
			vars["id"] = sess.Follow
		}
		if _, err := s.owner.query(ctx, sess.Gateway, `query($id: ID) { tasks(first: 20, assigneeId: $id) { totalCount edges { node { id status } } } }`, vars); err != nil {
			return
		}
		rec.refetched(sess, nil)
	}
}
