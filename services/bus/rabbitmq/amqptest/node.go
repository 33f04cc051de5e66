package amqptest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Node is a throwaway RabbitMQ node of a test's own, on free ports, with its own data and log
// directories, that the test may stop, start and restart like a broker outage or restart
// (R-REL-1, R-REL-3), without touching the machine's shared broker. Its durable queues and
// persistent messages survive a restart, as a real broker's do.
//
// It runs the machine's RabbitMQ server scripts (ATES_TEST_RABBITMQ_BIN, else
// /usr/lib/rabbitmq/bin); when they are missing the test is skipped with the reason, or fails
// when the CI environment variable is set. A node takes several seconds to start.
type Node struct {
	bin  string
	dir  string
	name string // Erlang node name
	port int    // AMQP
	dist int    // Erlang distribution

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartNode starts a node; it is stopped and its files removed when the test ends.
func StartNode(tb testing.TB) *Node {
	tb.Helper()
	bin := os.Getenv("ATES_TEST_RABBITMQ_BIN")
	if bin == "" {
		bin = "/usr/lib/rabbitmq/bin"
	}
	for _, f := range []string{"rabbitmq-server", "rabbitmqctl"} {
		if _, err := os.Stat(filepath.Join(bin, f)); err != nil {
			unavailable(tb, fmt.Errorf("no %s in %s (set ATES_TEST_RABBITMQ_BIN): %w", f, bin, err))
		}
	}
	dir, err := os.MkdirTemp("", "ates-rabbit-")
	if err != nil {
		tb.Fatalf("amqptest: %v", err)
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	n := &Node{bin: bin, dir: dir, name: "ates-test-" + hex.EncodeToString(id[:]) + "@localhost",
		port: freePort(tb), dist: freePort(tb)}
	tb.Cleanup(func() {
		n.Stop(tb)
		_ = os.RemoveAll(dir)
	})
	for _, d := range []string{"mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			tb.Fatalf("amqptest: %v", err)
		}
	}
	files := map[string]string{
		"enabled_plugins": "[].\n",
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.default = %d\nloopback_users = none\n", n.port),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			tb.Fatalf("amqptest: %v", err)
		}
	}
	n.Start(tb)
	return n
}

// URL is the node's AMQP URL (guest/guest, default vhost).
func (n *Node) URL() string {
	return "amqp://guest:guest@" + net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) + "/"
}

// Start starts the stopped node and waits until it accepts AMQP connections.
func (n *Node) Start(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return
	}
	cmd := exec.Command(filepath.Join(n.bin, "rabbitmq-server"))
	cmd.Dir = n.dir
	cmd.Env = append(n.env(),
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.dist),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(n.dir, "pid"),
	)
	out, err := os.OpenFile(filepath.Join(n.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatalf("amqptest: %v", err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its Erlang VM is stopped with it
	if err := cmd.Start(); err != nil {
		out.Close()
		unavailable(tb, fmt.Errorf("starting rabbitmq-server: %w", err))
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	deadline := time.Now().Add(2 * time.Minute)
	for {
		conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(n.dir, "server.out"))
			n.cmd = nil
			tb.Fatalf("amqptest: the node exited while starting: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("amqptest: the node does not accept connections after 2 minutes: %v", err)
		}
	}
}

// Stop stops the node as an administrator does (rabbitmqctl stop): its connections are closed
// and new ones refused until Start.
func (n *Node) Stop(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	ctl := exec.Command(filepath.Join(n.bin, "rabbitmqctl"), "-n", n.name, "stop")
	ctl.Env = n.env()
	ctl.Dir = n.dir
	ctlErr := ctl.Run()
	select {
	case <-n.exited:
	case <-time.After(time.Minute):
		ctlErr = errors.Join(ctlErr, errors.New("the node did not exit within a minute"))
	}
	if ctlErr != nil {
		tb.Logf("amqptest: stopping the node: %v; killing it", ctlErr)
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
	n.cmd = nil
}

// Restart stops the node and starts it again: its durable queues and persistent messages stay.
func (n *Node) Restart(tb testing.TB) {
	tb.Helper()
	n.Stop(tb)
	n.Start(tb)
}

// Running reports whether the node was started and not stopped since.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// env is the environment of the node's scripts: the node's name, and a home of its own for
// the Erlang cookie that rabbitmqctl must share with the node.
func (n *Node) env() []string {
	env := []string{"HOME=" + n.dir, "RABBITMQ_NODENAME=" + n.name}
	for _, k := range []string{"PATH", "LANG", "LC_ALL"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// freePort returns a TCP port nobody listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("amqptest: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// unavailable skips the test with the reason, or fails it when CI is set.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("amqptest: cannot run a throwaway RabbitMQ node and CI is set: %v", err)
	}
	tb.Skipf("skipping: cannot run a throwaway RabbitMQ node (%v); set CI=1 to make this a failure", err)
}
