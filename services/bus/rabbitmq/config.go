package rabbitmq

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
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
	// failed attempt up to MaxReconnectDelay (default 500ms).
	ReconnectDelay time.Duration
	// MaxReconnectDelay caps the wait between reconnection attempts (default 30s).
	MaxReconnectDelay time.Duration
	// DialTimeout bounds each TCP connection attempt (default 10s).
	DialTimeout time.Duration
	// Heartbeat is the AMQP heartbeat interval that detects dead connections (default 10s).
	Heartbeat time.Duration
	// IdlePublishChannels is how many confirm-mode channels are kept open for later Publish
	// calls; concurrent calls beyond it open extra channels (default 4).
	IdlePublishChannels int
	// PackSize is how many consecutive messages of one topic, published in one Publish call,
	// may travel as one AMQP message (a pack; see pack.go); 1 sends every message alone
	// (default DefaultPackSize). Consumers read packs and single messages alike.
	PackSize int
	// PackBytes bounds a pack's ids and bodies (default DefaultPackBytes); a larger message
	// travels alone.
	PackBytes int
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
		c.ReconnectDelay = 500 * time.Millisecond
	}
	if c.MaxReconnectDelay <= 0 {
		c.MaxReconnectDelay = 30 * time.Second
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
	if c.PackSize <= 0 {
		c.PackSize = DefaultPackSize
	}
	if c.PackBytes <= 0 {
		c.PackBytes = DefaultPackBytes
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
