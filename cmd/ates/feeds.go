package main

import (
	"strings"

	"github.com/google/uuid"
)

// newInstanceID names one run of a process: its feeds' queues carry it, so two gateways never
// share a feed, and a restarted gateway starts on fresh ones (R-REL-1).
func newInstanceID() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

// gatewayFeed names a gateway feed (bus.Subscription.Feed): its purpose and the process's run.
func gatewayFeed(instance, purpose string) string { return "gateway." + instance + "." + purpose }

// noFeedGapHook is the gap hook of a gateway feed that does nothing yet (R-REL-1). The account
// feed's hook is where the gateway re-reads what changed (its revocation set); the balance
// feed's is where the hub tells every live subscriber RESYNC. The transport calls a hook from
// the feed's consumer, before the next delivery; the first subscription of a new process
// reports one gap too, before anything is delivered.
func noFeedGapHook() {}
