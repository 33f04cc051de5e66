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
