package rabbitmq

import (
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy to the broker that a test can cut: drop kills every connection through it
// and refuses new ones for a while; hold stops forwarding, so what is in flight stays in flight.
type proxy struct {
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

// startProxy listens on a free local port and forwards to the broker of amqpURL.
func startProxy(tb testing.TB, amqpURL string) *proxy {
	tb.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		tb.Fatalf("proxy: parsing %q: %v", amqpURL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listening: %v", err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// url is amqpURL with the proxy in place of the broker.
func (p *proxy) url(amqpURL string) string {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return amqpURL
	}
	u.Host = p.ln.Addr().String()
	return u.String()
}

// hold stops forwarding in both directions until drop.
func (p *proxy) hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
}

// drop closes every connection through the proxy and refuses new ones for refuseFor.
func (p *proxy) drop(refuseFor time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseUntil = time.Now().Add(refuseFor)
	p.holding = false
	p.cond.Broadcast()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.drop(0)
	p.wg.Wait()
}

func (p *proxy) accept() {
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

func (p *proxy) serve(client net.Conn) {
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

func (p *proxy) track(conns ...net.Conn) bool {
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
func (p *proxy) forward(dst, src net.Conn) {
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
