// Package pgtest runs a throwaway PostgreSQL server of a test's own, on a free port, that the
// test may stop, start and restart: database outages are tested against a real server without
// touching the machine's shared one (R-REL-2, R-REL-4).
//
// It uses the server binaries of the machine (initdb, pg_ctl; ATES_TEST_PG_BIN, else
// pg_config --bindir, else /usr/lib/postgresql/15/bin). They refuse to run as root, so as root
// they run as the postgres system user (runuser), in a temporary directory it owns. When that
// is impossible the test is skipped with the reason, or fails when the CI environment variable
// is set.
package pgtest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver
)

// Server is a throwaway PostgreSQL server.
type Server struct {
	bin     string
	dir     string // owned by the server's user: data/, the socket and the log
	port    int
	runAs   string // system user to run the binaries as; empty: the current one
	mu      sync.Mutex
	running bool
}

// Start creates a cluster in a temporary directory and starts it on a free port; the server is
// stopped and its files removed when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		unavailable(tb, err)
	}
	s := &Server{bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			unavailable(tb, fmt.Errorf("running as root and there is no postgres system user to run the server as: %w", err))
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			unavailable(tb, fmt.Errorf("running as root and runuser is missing: %w", err))
		}
		s.runAs = "postgres"
	}
	dir, err := os.MkdirTemp("", "ates-pgtest-")
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	s.dir = dir
	tb.Cleanup(func() {
		s.stop(tb, "immediate")
		_ = os.RemoveAll(dir)
	})
	if s.runAs != "" {
		out, err := exec.Command("chown", s.runAs+":", dir).CombinedOutput()
		if err != nil {
			unavailable(tb, fmt.Errorf("chown %s: %v: %s", dir, err, out))
		}
	}
	if out, err := s.command("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		unavailable(tb, fmt.Errorf("initdb: %v: %s", err, out))
	}
	s.port = freePort(tb)
	s.Start(tb)
	return s
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL is the URL of the named database on the server (user postgres, trust authentication).
func (s *Server) URL(database string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path: "/" + database, RawQuery: "sslmode=disable"}
	return u.String()
}

// AdminURL is the URL of the server's maintenance database.
func (s *Server) AdminURL() string { return s.URL("postgres") }

// Start starts the stopped server and waits until it accepts connections.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60",
		s.port, s.dir)
	if out, err := s.command("pg_ctl", "-D", s.dataDir(), "-o", opts, "-l", filepath.Join(s.dir, "server.log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		tb.Fatalf("pgtest: starting the server: %v: %s\n%s", err, out, log)
	}
	s.running = true
	s.waitAccepting(tb)
}

// Stop stops the server the way an administrator's fast shutdown does: sessions are ended
// (their clients see "terminating connection due to administrator command") and connections
// are refused until Start.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.stop(tb, "fast")
}

// Restart stops the server and starts it again.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.Start(tb)
}

// Running reports whether the server was started and not stopped since.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

func (s *Server) stop(tb testing.TB, mode string) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	if out, err := s.command("pg_ctl", "-D", s.dataDir(), "-m", mode, "-w", "-t", "60", "stop").CombinedOutput(); err != nil {
		tb.Errorf("pgtest: stopping the server: %v: %s", err, out)
		return
	}
	s.running = false
}

// waitAccepting waits until a query succeeds (pg_ctl -w may return while the server still
// refuses with "the database system is starting up").
func (s *Server) waitAccepting(tb testing.TB) {
	tb.Helper()
	db, err := sql.Open("postgres", s.AdminURL()+"&connect_timeout=5")
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("pgtest: the server does not accept connections: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

// command runs a server binary, as the server's user when one is set.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd
}

// binDir finds the directory of initdb and pg_ctl.
func binDir() (string, error) {
	var candidates []string
	if d := os.Getenv("ATES_TEST_PG_BIN"); d != "" {
		candidates = append(candidates, d)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, string(bytes.TrimSpace(out)))
	}
	candidates = append(candidates, "/usr/lib/postgresql/15/bin")
	for _, d := range candidates {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
				return d, nil
			}
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries (initdb, pg_ctl) in %s; set ATES_TEST_PG_BIN", strings.Join(candidates, ", "))
}

// freePort returns a TCP port nobody listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgtest: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// unavailable skips the test with the reason, or fails it when CI is set.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("pgtest: cannot run a throwaway PostgreSQL server and CI is set: %v", err)
	}
	tb.Skipf("skipping: cannot run a throwaway PostgreSQL server (%v); set CI=1 to make this a failure", err)
}
