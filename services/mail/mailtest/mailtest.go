// Package mailtest gives tests a real SMTP server (emersion/go-smtp) on 127.0.0.1: it records
// every message it accepts, can require a login, and can refuse — with a temporary SMTP error
// at MAIL, RCPT or DATA — the first n attempts or every attempt during a period, as a mail
// server that is down or overloaded does (R-ACC-8). Nothing is mocked: aTES's senders talk SMTP
// to it over TCP.
package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Stage is the SMTP command at which the server refuses.
type Stage int

// The stages of a mail transaction.
const (
	Mail Stage = iota // MAIL FROM
	Rcpt              // RCPT TO
	Data              // DATA (after the message was transmitted)
)

func (s Stage) String() string {
	switch s {
	case Mail:
		return "MAIL"
	case Rcpt:
		return "RCPT"
	default:
		return "DATA"
	}
}

// Message is one accepted message as received.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Option configures a Server.
type Option func(*Server)

// WithLogin makes the server advertise AUTH PLAIN (without TLS) and refuse mail from a client
// that has not logged in with username and password.
func WithLogin(username, password string) Option {
	return func(s *Server) { s.username, s.password = username, password }
}

// WithDelay makes the server wait d before answering DATA: a slow server.
func WithDelay(d time.Duration) Option { return func(s *Server) { s.delay = d } }

// Server is a running SMTP server.
type Server struct {
	srv       *smtp.Server
	ln        net.Listener
	addr      string
	done      chan struct{}
	closeOnce sync.Once

	username, password string
	delay              time.Duration

	mu          sync.Mutex
	msgs        []Message
	refuseStage Stage
	refuseLeft  int       // refuse this many more attempts at refuseStage
	refuseUntil time.Time // refuse every attempt at refuseStage until then
	refused     int
	logins      []string // usernames that logged in
	changed     chan struct{}
}

// MustStart starts a server on 127.0.0.1 (a free port), stopped when the test ends.
func MustStart(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: listening: %v", err)
	}
	s.ln, s.addr = ln, ln.Addr().String()
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "mailtest.local"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server: from then on connections to its port are refused, as when a mail
// server is down. The test's end closes it too.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		_ = s.srv.Close()
		_ = s.ln.Close() // Serve may not have registered it yet
		<-s.done
	})
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the server as ATES_SMTP_URL: smtp://[user:pass@]127.0.0.1:port.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr}
	if s.username != "" {
		u.User = url.UserPassword(s.username, s.password)
	}
	return u.String()
}

// RefuseFirst makes the server refuse the next n attempts at stage with 451 (try again later).
func (s *Server) RefuseFirst(stage Stage, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseStage, s.refuseLeft, s.refuseUntil = stage, n, time.Time{}
}

// RefuseFor makes the server refuse every attempt at stage for the period d from now.
func (s *Server) RefuseFor(stage Stage, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuseStage, s.refuseLeft, s.refuseUntil = stage, 0, time.Now().Add(d)
}

// Accept makes the server accept every attempt again.
func (s *Server) Accept() { s.RefuseFirst(Mail, 0) }

// Refused is how many attempts the server has refused so far.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Logins lists the usernames that logged in, in order.
func (s *Server) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

// Messages returns the accepted messages in the order they were accepted.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitMessages waits until at least n messages were accepted and returns them; it fails the
// test after timeout.
func (s *Server) WaitMessages(tb testing.TB, n int, timeout time.Duration) []Message {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, changed := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("mailtest: %d messages after %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// refuse decides, under the lock, whether to refuse an attempt at stage.
func (s *Server) refuse(stage Stage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stage != s.refuseStage {
		return nil
	}
	switch {
	case s.refuseLeft > 0:
		s.refuseLeft--
	case time.Now().Before(s.refuseUntil):
	default:
		return nil
	}
	s.refused++
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailtest: try again later (" + stage.String() + ")"}
}

func (s *Server) accept(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// session is one SMTP connection.
type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (c *session) AuthMechanisms() []string {
	if c.s.username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (c *session) Auth(mech string) (sasl.Server, error) {
	if c.s.username == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != c.s.username || password != c.s.password {
			return smtp.ErrAuthFailed
		}
		c.authed = true
		c.s.mu.Lock()
		c.s.logins = append(c.s.logins, username)
		c.s.mu.Unlock()
		return nil
	}), nil
}

func (c *session) Mail(from string, _ *smtp.MailOptions) error {
	if c.s.username != "" && !c.authed {
		return smtp.ErrAuthRequired
	}
	if err := c.s.refuse(Mail); err != nil {
		return err
	}
	c.from = from
	return nil
}

func (c *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := c.s.refuse(Rcpt); err != nil {
		return err
	}
	c.to = append(c.to, to)
	return nil
}

func (c *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if c.s.delay > 0 {
		time.Sleep(c.s.delay)
	}
	if err := c.s.refuse(Data); err != nil {
		return err
	}
	c.s.accept(Message{From: c.from, To: append([]string(nil), c.to...), Data: data})
	return nil
}

func (c *session) Reset() { c.from, c.to = "", nil }

func (c *session) Logout() error { return nil }

// Parsed is a received message taken apart: headers decoded, bodies of a text/plain and a
// text/html part (single-part or multipart/alternative), transfer encodings undone.
type Parsed struct {
	Header  mail.Header
	From    *mail.Address
	To      []*mail.Address
	Subject string
	Text    string
	HTML    string
}

// Parse takes a raw RFC 5322 message apart.
func Parse(raw []byte) (Parsed, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Parsed{}, fmt.Errorf("mailtest: reading the message: %w", err)
	}
	p := Parsed{Header: m.Header}
	if p.From, err = mail.ParseAddress(m.Header.Get("From")); err != nil {
		return Parsed{}, fmt.Errorf("mailtest: From %q: %w", m.Header.Get("From"), err)
	}
	if p.To, err = m.Header.AddressList("To"); err != nil {
		return Parsed{}, fmt.Errorf("mailtest: To %q: %w", m.Header.Get("To"), err)
	}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		return Parsed{}, fmt.Errorf("mailtest: Subject: %w", err)
	}
	if err := p.readPart(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body); err != nil {
		return Parsed{}, err
	}
	return p, nil
}

func (p *Parsed) readPart(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("mailtest: Content-Type %q: %w", contentType, err)
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mailtest: reading a part: %w", err)
			}
			if err := p.readPart(part.Header.Get("Content-Type"), part.Header.Get("Content-Transfer-Encoding"), part); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64Reader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("mailtest: reading a %s body: %w", media, err)
	}
	switch media {
	case "text/plain":
		p.Text += string(b)
	case "text/html":
		p.HTML += string(b)
	}
	return nil
}

// base64Reader decodes a base64 body whose lines are wrapped.
func base64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, &stripNewlines{r: r})
}

// stripNewlines drops CR and LF.
type stripNewlines struct{ r io.Reader }

func (s *stripNewlines) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}
