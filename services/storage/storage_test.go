package storage

import (
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
