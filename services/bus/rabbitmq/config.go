package rabbitmq

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/uberpopug/ates/services/backoff"
)

// Config configures a Transport.
type Config struct {
	// URL is the broker's AMQP URL, e.g. amqp://user:pass@host:5672/vhost (required).
	URL string
	// Exchange is the durable topic exchange all events go through (default "ates.events").
	Exchange string
	// QueuePrefix is prepended to durable queue names; it lets tests and deployments share a vhost.
	QueuePrefix string
	// Logger receives the transport's structured logs (default slog.Default()).
	Logger *slog.Logger
	// ReconnectDelay is the first wait before redialling a lost connection; it doubles on each
	// failed attempt up to MaxReconnectDelay, each wait jittered by up to half (default
	// DefaultReconnectDelay).
	ReconnectDelay time.Duration
	// MaxReconnectDelay caps the wait between reconnection attempts (default
	// DefaultMaxReconnectDelay).
	MaxReconnectDelay time.Duration
	// DialTimeout bounds each TCP connection attempt (default 10s).
	DialTimeout time.Duration
	// Heartbeat is the AMQP heartbeat interval that detects dead connections (default 10s).
	Heartbeat time.Duration
	// IdlePublishChannels is how many confirm-mode channels are kept open for later Publish
	// calls; concurrent calls beyond it open extra channels (default 4).
	IdlePublishChannels int
	// BatchSize is how many messages of one topic, published in one Publish call, may travel
	// as one AMQP message (a CloudEvents batch; see cloudevents.go); 1 sends every message
	// alone (default DefaultBatchSize). Consumers read batches, packs of earlier versions and
	// single messages alike.
	BatchSize int
	// BatchBytes bounds a batch's size, about (default DefaultBatchBytes); a larger message
	// travels alone.
	BatchBytes int
	// FeedExpiry is how long a feed's queue (bus.Subscription.Feed) outlives its last
	// consumer: long enough for reconnects and broker restarts, short enough that a process
	// gone for good leaves no queue filling up for long (default DefaultFeedExpiry).
	FeedExpiry time.Duration
}

// DefaultFeedExpiry is Config.FeedExpiry when unset (R-REL-1).
const DefaultFeedExpiry = 5 * time.Minute

// Reconnect backoff defaults (R-REL-3): a broker that comes back is found within
// DefaultMaxReconnectDelay, however long it was away, and processes retry out of step.
const (
	DefaultReconnectDelay    = 250 * time.Millisecond
	DefaultMaxReconnectDelay = 3 * time.Second
)

// reconnectJitter is the share of each reconnect wait drawn at random.
const reconnectJitter = 0.5

// reconnectPolicy is the backoff of dialling and of resuming consumers.
func (c Config) reconnectPolicy() backoff.Policy {
	return backoff.Policy{Initial: c.ReconnectDelay, Max: c.MaxReconnectDelay, Jitter: reconnectJitter}
}

// DefaultExchange is the exchange used when Config.Exchange is empty.
const DefaultExchange = "ates.events"

func (c Config) withDefaults() Config {
	if c.Exchange == "" {
		c.Exchange = DefaultExchange
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ReconnectDelay <= 0 {
		c.ReconnectDelay = DefaultReconnectDelay
	}
	if c.MaxReconnectDelay <= 0 {
		c.MaxReconnectDelay = DefaultMaxReconnectDelay
	}
	if c.MaxReconnectDelay < c.ReconnectDelay {
		c.MaxReconnectDelay = c.ReconnectDelay
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.IdlePublishChannels <= 0 {
		c.IdlePublishChannels = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.FeedExpiry <= 0 {
		c.FeedExpiry = DefaultFeedExpiry
	}
	return c
}

// Validate reports whether the configuration can be used.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("rabbitmq: config: URL is required")
	}
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return fmt.Errorf("rabbitmq: config: URL: %w", err)
	}
	return nil
}
