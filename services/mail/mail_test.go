package mail_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/uberpopug/ates/services/mail"
	"github.com/uberpopug/ates/services/mail/mailtest"
)

const from = "aTES <ates@uberpopug.local>"

// message is a payment-like email with both bodies.
func message(to, name string) mail.Message {
	return mail.Message{
		To: to, ToName: name, Subject: "aTES payout for 2026-11-22: $35.00",
		Text: "Hello,\n\nyour aTES balance for 2026-11-22 has been paid out: $35.00.\n",
		HTML: "<!DOCTYPE html><html><body><p>paid out: <strong>$35.00</strong></p></body></html>",
	}
}

func mustSMTP(tb testing.TB, rawURL string) *mail.SMTP {
	tb.Helper()
	s, err := mail.NewSMTP(rawURL, from)
	if err != nil {
		tb.Fatalf("NewSMTP(%q): %v", rawURL, err)
	}
	return s
}

// mustParse takes a received message apart and checks the headers every message carries.
func mustParse(tb testing.TB, raw []byte) mailtest.Parsed {
	tb.Helper()
	p, err := mailtest.Parse(raw)
	if err != nil {
		tb.Fatalf("%v\n%s", err, raw)
	}
	if p.From.Address != "ates@uberpopug.local" || p.From.Name != "aTES" {
		tb.Errorf("From = %v, want aTES <ates@uberpopug.local>", p.From)
	}
	if p.Header.Get("Date") == "" || p.Header.Get("Message-Id") == "" {
		tb.Errorf("message without Date or Message-Id:\n%s", raw)
	}
	return p
}

// checkDelivered checks one received message against what was sent.
func checkDelivered(tb testing.TB, raw []byte, sent mail.Message) {
	tb.Helper()
	p := mustParse(tb, raw)
	if len(p.To) != 1 || p.To[0].Address != sent.To || p.To[0].Name != sent.ToName {
		tb.Errorf("To = %v, want %q <%s>", p.To, sent.ToName, sent.To)
	}
	if p.Subject != sent.Subject {
		tb.Errorf("Subject = %q, want %q", p.Subject, sent.Subject)
	}
	if normalize(p.Text) != normalize(sent.Text) {
		tb.Errorf("text body = %q, want %q", p.Text, sent.Text)
	}
	if normalize(p.HTML) != normalize(sent.HTML) {
		tb.Errorf("HTML body = %q, want %q", p.HTML, sent.HTML)
	}
}

func normalize(s string) string { return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")) }

// TestSMTPSend: a message reaches a real SMTP server with the sender, the recipient (with a
// display name that needs quoting or encoding), the subject and both bodies intact (R-ACC-8).
func TestSMTPSend(t *testing.T) {
	t.Parallel()
	srv := mailtest.MustStart(t)
	s := mustSMTP(t, srv.URL())
	sent := []mail.Message{
		message("kesha@uberpopug.com", "Kesha"),
		message("rio@uberpopug.com", ""),
		message("gosha@uberpopug.com", `Gosha "the Beak" O'Popug`),
		message("popka@uberpopug.com", "Попка Дурак"),
		message("pi@uberpopug.com", `Back\slash, Comma`),
	}
	for _, m := range sent {
		if err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("Send to %s: %v", m.To, err)
		}
	}
	got := srv.Messages()
	if len(got) != len(sent) {
		t.Fatalf("server received %d messages, want %d", len(got), len(sent))
	}
	for i, m := range sent {
		if got[i].From != "ates@uberpopug.local" || !slices.Equal(got[i].To, []string{m.To}) {
			t.Errorf("envelope %s → %v, want ates@uberpopug.local → %s", got[i].From, got[i].To, m.To)
		}
		checkDelivered(t, got[i].Data, m)
	}
}

// TestSMTPRefusedIsAnError: a temporary refusal at MAIL, RCPT or DATA is an error (so the
// caller retries) and the next attempt goes through.
func TestSMTPRefusedIsAnError(t *testing.T) {
	t.Parallel()
	for _, stage := range []mailtest.Stage{mailtest.Mail, mailtest.Rcpt, mailtest.Data} {
		t.Run(stage.String(), func(t *testing.T) {
			t.Parallel()
			srv := mailtest.MustStart(t)
			srv.RefuseFirst(stage, 1)
			s := mustSMTP(t, srv.URL())
			m := message("kesha@uberpopug.com", "Kesha")
			if err := s.Send(context.Background(), m); err == nil {
				t.Fatalf("Send succeeded although the server refused at %s", stage)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Fatalf("a refused send left %d messages", n)
			}
			if err := s.Send(context.Background(), m); err != nil {
				t.Fatalf("Send after the refusal: %v", err)
			}
			if got := srv.Messages(); len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
		})
	}
}

// TestSMTPServerDown: a server that does not answer is an error (the caller retries), not a
// hang or a panic.
func TestSMTPServerDown(t *testing.T) {
	t.Parallel()
	srv := mailtest.MustStart(t)
	s := mustSMTP(t, srv.URL())
	srv.Close()
	if err := s.Send(context.Background(), message("kesha@uberpopug.com", "")); err == nil {
		t.Fatal("Send to a stopped server succeeded")
	}
}

// TestNewSMTPURL: ATES_SMTP_URL forms (R-OPS-3) — smtp://host:port plain, user:pass logging in
// (percent-encoded characters decoded), ?tls=starttls insisting on STARTTLS, smtps:// insisting
// on TLS — and malformed URLs refused at start.
func TestNewSMTPURL(t *testing.T) {
	t.Parallel()
	plain := mailtest.MustStart(t)
	login := mailtest.MustStart(t, mailtest.WithLogin("us@er", "p:ss w/rd"))
	for _, tc := range []struct {
		name  string
		url   string
		srv   *mailtest.Server
		sends bool // the message is accepted
	}{
		{"plain", "smtp://" + plain.Addr(), plain, true},
		{"login", login.URL(), login, true},
		{"login percent-encoded", "smtp://us%40er:p%3Ass%20w%2Frd@" + login.Addr(), login, true},
		{"wrong password", "smtp://us%40er:nope@" + login.Addr(), login, false},
		{"no login where required", "smtp://" + login.Addr(), login, false},
		{"starttls required, server has none", "smtp://" + plain.Addr() + "?tls=starttls", plain, false},
		{"smtps to a plain server", "smtps://" + plain.Addr(), plain, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.Messages())
			s := mustSMTP(t, tc.url)
			err := s.Send(context.Background(), message("kesha@uberpopug.com", "Kesha"))
			if tc.sends && err != nil {
				t.Fatalf("Send through %s: %v", tc.url, err)
			}
			if !tc.sends && err == nil {
				t.Fatalf("Send through %s succeeded, want an error", tc.url)
			}
			want := before
			if tc.sends {
				want++
			}
			if got := len(tc.srv.Messages()); got != want {
				t.Fatalf("server holds %d messages, want %d", got, want)
			}
		})
	}
	if got := login.Logins(); !slices.Equal(got, []string{"us@er", "us@er"}) {
		t.Errorf("logins = %q, want us@er twice (the login and the percent-encoded login)", got)
	}

	for _, bad := range []string{
		"", "::", "http://127.0.0.1:25", "smtp://", "smtp:///path", "smtp://host:port", "smtp://host:0",
		"smtp://host:70000", "mailto:kesha@uberpopug.com", "smtp://host:25?tls=bogus",
	} {
		if _, err := mail.NewSMTP(bad, from); err == nil {
			t.Errorf("NewSMTP(%q) accepted", bad)
		}
	}
}

// TestMailboxWritesEml: the embedded default writes one complete, parseable .eml per message
// into the folder (created when missing), and leaves no temporary file behind.
func TestMailboxWritesEml(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "mailbox")
	b, err := mail.NewMailbox(dir, from, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	sent := []mail.Message{
		message("kesha@uberpopug.com", "Kesha"),
		message("gosha@uberpopug.com", `Gosha "the Beak"`),
		message("popka@uberpopug.com", "Попка"),
	}
	for _, m := range sent {
		if err := b.Send(context.Background(), m); err != nil {
			t.Fatalf("Send to %s: %v", m.To, err)
		}
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	byTo := map[string][]byte{}
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".eml") || strings.HasPrefix(f.Name(), ".") {
			t.Errorf("unexpected file %s in the mailbox", f.Name())
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := mustParse(t, raw)
		if len(p.To) != 1 {
			t.Fatalf("%s: To = %v", f.Name(), p.To)
		}
		byTo[p.To[0].Address] = raw
	}
	if len(files) != len(sent) || len(byTo) != len(sent) {
		t.Fatalf("%d files for %d recipients, want %d of each", len(files), len(byTo), len(sent))
	}
	for _, m := range sent {
		raw, ok := byTo[m.To]
		if !ok {
			t.Errorf("no .eml for %s", m.To)
			continue
		}
		checkDelivered(t, raw, m)
	}
}

// TestMailboxIsPrivate: R-SEC-5 — under umask 0 the mailbox folder is created 0700 and every
// .eml 0600; a folder and emails that exist world-readable are tightened when it is opened.
func TestMailboxIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	mode := func(path string) os.FileMode {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return info.Mode().Perm()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "data", "mailbox")
	b, err := mail.NewMailbox(dir, from, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(context.Background(), message("kesha@uberpopug.com", "Kesha")); err != nil {
		t.Fatal(err)
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("mailbox folder mode %v, want 0700", m)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) != 1 {
		t.Fatalf("emails %v, %v; want one", files, err)
	}
	if m := mode(files[0]); m != 0o600 {
		t.Errorf("email mode %v, want 0600", m)
	}

	// Opened up by hand (or written by an older version), then opened again.
	old1 := filepath.Join(dir, "old.eml")
	if err := os.WriteFile(old1, []byte("Subject: old\r\n\r\nold\r\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{old1, files[0]} {
		if err := os.Chmod(p, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := mail.NewMailbox(dir, from, log); err != nil {
		t.Fatal(err)
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("reopened mailbox folder mode %v, want 0700", m)
	}
	for _, p := range []string{old1, files[0]} {
		if m := mode(p); m != 0o600 {
			t.Errorf("%s mode %v after reopening, want 0600", filepath.Base(p), m)
		}
	}
}
