// Package mail sends email: through an SMTP server (ATES_SMTP_URL) with go-mail, or — the
// embedded default — into a local mailbox folder as .eml files (R-OPS-1, R-ACC-8).
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/uberpopug/ates/services/storage"
)

// Message is one email with a plain-text and an HTML body.
type Message struct {
	To      string
	ToName  string
	Subject string
	Text    string
	HTML    string
}

// Sender delivers messages; an error means the message was not accepted and may be retried.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

func build(from string, m Message) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail: sender %q: %w", from, err)
	}
	to := m.To
	if m.ToName != "" {
		to = fmt.Sprintf("%q <%s>", m.ToName, m.To)
	}
	if err := msg.To(to); err != nil {
		return nil, fmt.Errorf("mail: recipient %q: %w", m.To, err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// SMTP sends through an SMTP server.
type SMTP struct {
	from   string
	client *gomail.Client
}

// NewSMTP configures a sender from smtp://[user:pass@]host:port (plain, for local servers),
// smtp://…?tls=starttls (STARTTLS required) or smtps://… (implicit TLS).
func NewSMTP(rawURL, from string) (*SMTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("mail: ATES_SMTP_URL must be smtp://[user:pass@]host:port")
	}
	opts := []gomail.Option{gomail.WithTimeout(15 * time.Second)}
	port := 25
	// An unknown tls value (a typo of starttls) must not quietly mean plain text: the login
	// would cross the network unencrypted.
	tlsMode := u.Query().Get("tls")
	switch {
	case u.Scheme == "smtp" && tlsMode == "starttls":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		port = 587
	case u.Scheme == "smtp" && tlsMode == "":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case u.Scheme == "smtps" && tlsMode == "":
		opts = append(opts, gomail.WithSSL())
		port = 465
	case u.Scheme == "smtp" || u.Scheme == "smtps":
		return nil, fmt.Errorf("mail: tls=%q is not supported (smtp://…?tls=starttls, or smtps:// for implicit TLS)", tlsMode)
	default:
		return nil, fmt.Errorf("mail: unsupported scheme %q (want smtp or smtps)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("mail: port %q: %w", p, err)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		auth := gomail.SMTPAuthPlain
		if u.Scheme == "smtp" && tlsMode != "starttls" {
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return &SMTP{from: from, client: c}, nil
}

// Send delivers one message, dialling the server for it.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	msg, err := build(s.from, m)
	if err != nil {
		return err
	}
	if err := s.client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: sending to %s: %w", m.To, err)
	}
	return nil
}

// Mailbox writes messages as .eml files into a folder and logs them: the embedded default.
type Mailbox struct {
	dir  string
	from string
	log  *slog.Logger
}

// NewMailbox returns a mailbox writing into dir (created when missing). The folder and its
// .eml files are their owner's only (0700, 0600), also when they existed with wider modes:
// emails name popugs and their payouts (R-SEC-5).
func NewMailbox(dir, from string, log *slog.Logger) (*Mailbox, error) {
	if err := storage.PrivateDirectory(dir); err != nil {
		return nil, fmt.Errorf("mail: the mailbox folder: %w", err)
	}
	if err := storage.TightenFiles(dir, ".eml"); err != nil {
		return nil, fmt.Errorf("mail: the mailbox folder: %w", err)
	}
	return &Mailbox{dir: dir, from: from, log: log}, nil
}

// Send writes the message to a new .eml file (written whole, then renamed into place).
func (b *Mailbox) Send(_ context.Context, m Message) error {
	msg, err := build(b.from, m)
	if err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(rnd[:]) + ".eml"
	tmp := filepath.Join(b.dir, "."+name+".tmp")
	if err := writePrivate(tmp, msg); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("mail: writing %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(b.dir, name)); err != nil {
		return fmt.Errorf("mail: writing %s: %w", name, err)
	}
	b.log.Info("email written to the mailbox", "to", m.To, "subject", m.Subject, "file", name)
	return nil
}

// writePrivate writes the message to a new file of mode 0600, whatever the umask (R-SEC-5).
func writePrivate(path string, msg *gomail.Msg) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, storage.PrivateFile)
	if err != nil {
		return err
	}
	if err := f.Chmod(storage.PrivateFile); err != nil {
		f.Close()
		return err
	}
	if _, err := msg.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
