package storage

import (
	"entgo.io/ent/dialect"

	"net/url"
	"testing"
)

// TestWithBinaryParameters: PostgreSQL connections send parameters in one round trip by
// default (lib/pq's binary_parameters), and a URL that chooses otherwise is kept as it is.
func TestWithBinaryParameters(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/ates_tasks", "yes"},
		{"postgres://postgres@127.0.0.1:5432/ates_tasks?sslmode=disable", "yes"},
		{"postgres://postgres@127.0.0.1:5432/ates_tasks?binary_parameters=no", "no"},
	}
	for _, tt := range tests {
		u, err := url.Parse(withBinaryParameters(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("binary_parameters"); got != tt.want {
			t.Errorf("withBinaryParameters(%q) has binary_parameters=%q, want %q", tt.in, got, tt.want)
		}
		if in, _ := url.Parse(tt.in); in.Query().Get("sslmode") != u.Query().Get("sslmode") || in.Path != u.Path || in.Host != u.Host {
			t.Errorf("withBinaryParameters(%q) = %q changed more than binary_parameters", tt.in, u)
		}
	}
}

// TestWithDefaults: a PostgreSQL URL gets a bounded connect timeout unless it sets its own
// (R-REL-4: an outage answers fast, never hangs), and binary parameters as before.
func TestWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, timeout string }{
		{"postgres://postgres@127.0.0.1:5432/ates_tasks", "5"},
		{"postgres://postgres@127.0.0.1:5432/ates_tasks?sslmode=disable", "5"},
		{"postgres://postgres@127.0.0.1:5432/ates_tasks?connect_timeout=30", "30"},
	}
	for _, tt := range tests {
		u, err := url.Parse(withDefaults(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := u.Query().Get("connect_timeout"); got != tt.timeout {
			t.Errorf("withDefaults(%q) has connect_timeout=%q, want %q", tt.in, got, tt.timeout)
		}
		if got := u.Query().Get("binary_parameters"); got != "yes" {
			t.Errorf("withDefaults(%q) has binary_parameters=%q, want yes", tt.in, got)
		}
		if in, _ := url.Parse(tt.in); in.Query().Get("sslmode") != u.Query().Get("sslmode") || in.Path != u.Path || in.Host != u.Host {
			t.Errorf("withDefaults(%q) = %q changed more than its parameters", tt.in, u)
		}
	}
}

// TestRebind: placeholders become SQLite's, and nothing else changes: a '$' in a literal, a
// quoted identifier or a comment is text.
func TestRebind(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, sqlite string }{
		{"SELECT $1, $2", "SELECT ?1, ?2"},
		{"SELECT '$1 costs $5', $1", "SELECT '$1 costs $5', ?1"},
		{"SELECT 'it''s $3', $3", "SELECT 'it''s $3', ?3"},
		{`SELECT "col$1" FROM t WHERE a = $1`, `SELECT "col$1" FROM t WHERE a = ?1`},
		{"SELECT $1 -- pays $2\nFROM t WHERE b = $2", "SELECT ?1 -- pays $2\nFROM t WHERE b = ?2"},
		{"SELECT /* $9 */ $1", "SELECT /* $9 */ ?1"},
		{"SELECT price$ FROM t", "SELECT price$ FROM t"},
	}
	for _, c := range cases {
		if got := Rebind(dialect.SQLite, c.in); got != c.sqlite {
			t.Errorf("Rebind(sqlite, %q) = %q, want %q", c.in, got, c.sqlite)
		}
		if got := Rebind(dialect.Postgres, c.in); got != c.in {
			t.Errorf("Rebind(postgres, %q) = %q, want it unchanged", c.in, got)
		}
	}
}
