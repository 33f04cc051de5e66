package main

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/testenv"
)

// TestRunFeedGapsAreNotSilent: R-REL-1 — when a gateway's feed queue is lost (deleted here,
// as an expiry or a broker that lost it would), the gateway tells every follower of that feed
// RESYNC instead of silently missing pushes, and reads the revocations again, so a deactivation
// made meanwhile is enforced.
func TestRunFeedGapsAreNotSilent(t *testing.T) {
	env := mustProduction(t)
	gw, base := MustStart(t, env.Environ, "gateway")
	MustStart(t, env.Environ, "worker")
	m := regexp.MustCompile(`msg="gateway feeds" instance=(\S+)`).FindStringSubmatch(gw.stderr.String())
	if m == nil {
		t.Fatalf("the gateway did not log its feeds:\n%s", gw.stderr.String())
	}
	queue := func(purpose string) string { return env.Name + ".feed.gateway." + m[1] + "." + purpose }

	bossToken, _ := mustLogin(t, base, "boss", "boss-beak-print")
	kiwi := mustSignUp(t, base, "kiwi")
	balance := mustSubscribeBalance(t, "kiwi", mustDialWS(t, base, transportWS, kiwi.Token), "")
	mustSync(t, func() string { return mustCreateTask(t, base, bossToken, 1).ID }, balance)
	balance.drain(t, 500*time.Millisecond)
	board := mustDialWS(t, base, transportWS, bossToken)
	board.subscribe(t, "board", boardQuery, nil)
	for n := 2; ; n++ {
		mustCreateTask(t, base, bossToken, n)
		if _, err := board.next(2 * time.Second); err == nil {
			break
		}
	}

	conn, err := amqp.Dial(testenv.AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, purpose := range []string{"balances", "tasks", "accounts"} {
		if _, err := ch.QueueDelete(queue(purpose), false, false, false); err != nil {
			t.Fatalf("deleting the %s feed's queue: %v", purpose, err)
		}
	}
	mustDo(t, base, bossToken, `mutation($id: ID!) { deactivateAccount(accountId: $id) { id } }`, map[string]any{"id": kiwi.ID}, nil)

	for name, c := range map[string]*wsConn{"balance": balance.c, "board": board} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			msg, err := c.next(time.Until(deadline))
			if err != nil {
				t.Fatalf("%s: no RESYNC after its feed's queue was lost: %v", name, err)
			}
			if msg.Type != "error" {
				continue // a push that still came through
			}
			var list []struct{ Extensions map[string]any }
			if json.Unmarshal(msg.Payload, &list) != nil || len(list) == 0 || list[0].Extensions["code"] != "RESYNC" {
				// kiwi's balance socket may be ended for the deactivation first: also not silent.
				if name == "balance" && len(list) > 0 && list[0].Extensions["code"] == "UNAUTHENTICATED" {
					break
				}
				t.Fatalf("%s: ended with %s, want RESYNC", name, msg.Payload)
			}
			break
		}
	}
	waitWithin(t, 20*time.Second, "the deactivated popug's token to be refused after the account feed's gap", func() (bool, string) {
		r := mustGraphQL(t, base, kiwi.Token, `{ me { id } }`, nil)
		return len(r.Errors) > 0 && r.Errors[0].Extensions["code"] == "UNAUTHENTICATED", "it still works"
	})
}
