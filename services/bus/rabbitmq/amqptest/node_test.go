package amqptest_test

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/bus/rabbitmq/amqptest"
)

// TestNodeStopStart: a throwaway node accepts connections, refuses them while stopped, and
// after Start (and Restart) still holds a durable queue's persistent message, as a restarted
// broker does (R-REL-1).
func TestNodeStopStart(t *testing.T) {
	t.Parallel()
	n := amqptest.StartNode(t)
	conn, err := amqp.Dial(n.URL())
	if err != nil {
		t.Fatalf("dialling the started node: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("kept", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "kept", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("still here")}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Close(); err != nil { // waits for the publication to reach the node
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	n.Stop(t)
	if n.Running() {
		t.Error("Running after Stop")
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Error("a connection to the stopped node stayed open")
	}
	if c, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)}); err == nil {
		c.Close()
		t.Fatal("the stopped node accepted a connection")
	}

	n.Start(t)
	n.Restart(t)
	conn, err = amqp.Dial(n.URL())
	if err != nil {
		t.Fatalf("dialling the node after Start: %v", err)
	}
	defer conn.Close()
	ch, err = conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	m, ok, err := ch.Get("kept", true)
	if err != nil || !ok || string(m.Body) != "still here" {
		t.Fatalf("after the restarts: message %q, found %v, %v; want the persistent message", m.Body, ok, err)
	}
}
