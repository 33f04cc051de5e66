// Package amqptest helps tests cause broker outages: a TCP proxy between a client and
// RabbitMQ that a test can cut (R-REL-3).
package amqptest

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy to the broker that a test can cut: Drop kills every connection through
// it and refuses new ones for a while (the broker is away); Hold stops forwarding, so what is in
// flight stays in flight.
type Proxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64 // connections forwarded to the broker

	mu          sync.Mutex
	cond        *sync.Cond // signalled when holding ends
	conns       map[net.Conn]struct{}
	holding     bool
	refuseUntil time.Time
	closed      bool
	wg          sync.WaitGroup
}

// StartProxy listens on a free local port and forwards to the broker of amqpURL; it is closed
// when the test ends.
func StartProxy(tb testing.TB, amqpURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		tb.Fatalf("proxy: parsing %q: %v", amqpURL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listening: %v", err)
	}
	p := &Proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// URL is amqpURL with the proxy in place of the broker.
func (p *Proxy) URL(amqpURL string) string {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return amqpURL
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// Hold stops forwarding in both directions until Drop.
func (p *Proxy) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// Drop closes every connection through the proxy and refuses new ones for refuseFor; it
// returns the moment the refusal ends: when the broker is back for the proxy's clients.
func (p *Proxy) Drop(refuseFor time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseUntil = time.Now().Add(refuseFor)
	p.holding = false
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
	return p.refuseUntil
}

// Allow ends a refusal begun by Drop now: the broker is back for the proxy's clients.
func (p *Proxy) Allow() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseUntil = time.Time{}
}

// Accepted is how many connections the proxy forwarded to the broker so far.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Drop(0)
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.closed || time.Now().Before(p.refuseUntil)
		p.mu.Unlock()
		if refuse {
			client.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(client)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	broker, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client, broker) {
		client.Close()
		broker.Close()
		return
	}
	p.accepted.Add(1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.forward(broker, client)
	}()
	p.forward(client, broker)
}

func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// forward copies src to dst, pausing while the proxy holds; it closes both when either ends.
func (p *Proxy) forward(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			for p.holding {
				p.cond.Wait()
			}
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
