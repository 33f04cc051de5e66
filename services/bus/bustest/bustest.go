// Package bustest is the contract every bus.Transport implementation must pass, in the manner of
// watermill's pubsub/tests: an implementation's own test calls Run with a constructor.
//
// Every test names its own queues and topics (a random word leads each topic), so the suite may
// run in parallel and against a shared broker. Tests are written to hold under both publish
// semantics of bus.Transport: the in-process bus's Publish returns only once consumers acknowledged,
// RabbitMQ's once the broker confirmed. Publications that may wait for a consumer therefore run in
// a goroutine, or the consumer subscribes first.
package bustest

import (
	"testing"
	"time"

	"github.com/uberpopug/ates/services/bus"
)

// Timeout bounds each contract test; waits that exceed it fail the test.
const Timeout = 30 * time.Second

// Run runs the contract suite. newTransport returns a fresh transport for one (sub)test and
// registers its Close with t.Cleanup; the suite may call Close itself, so Close must be idempotent.
func Run(t *testing.T, newTransport func(t *testing.T) bus.Transport) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, tr bus.Transport)
	}{
		{"TopicRouting", testTopicRouting},
		{"MessageToSeveralQueues", testMessageToSeveralQueues},
		{"DurableQueueKeepsEarlierMessages", testDurableQueueKeepsEarlierMessages},
		{"CompetingConsumers", testCompetingConsumers},
		{"PrivateSubscriptionsEachGetAll", testPrivateSubscriptionsEachGetAll},
		{"HandlerErrorRedelivers", testHandlerErrorRedelivers},
		{"ConsumerDiesBeforeAck", testConsumerDiesBeforeAck},
		{"StopIsGraceful", testStopIsGraceful},
		{"StopReachesWaitingHandler", testStopReachesWaitingHandler},
		{"OrderWithConcurrencyOne", testOrderWithConcurrencyOne},
		{"OrderPerKeyAcrossTopics", testOrderPerKeyAcrossTopics},
		{"ThousandMessages", testThousandMessages},
		{"PublishTakesResponsibility", testPublishTakesResponsibility},
		{"ClosedTransportRefuses", testClosedTransportRefuses},
		{"BatchDeliversEveryMessageOnce", testBatchDeliversEveryMessageOnce},
		{"BatchErrorRequeuesTheBatch", testBatchErrorRequeuesTheBatch},
		{"BatchConsumerDiesBeforeAck", testBatchConsumerDiesBeforeAck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newTransport(t))
		})
	}
}
