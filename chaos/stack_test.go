package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // PostgreSQL driver

	"github.com/uberpopug/ates/services/bus/rabbitmq/amqptest"
	"github.com/uberpopug/ates/services/mail/mailtest"
	"github.com/uberpopug/ates/services/storage/pgtest"
)

// The bootstrap admin of the suite's stack.
const (
	adminUsername = "boss"
	adminPassword = "boss-beak-print"
)

// contexts are aTES's bounded contexts, each with its database on the suite's cluster.
var contexts = []string{"auth", "tasks", "accounting", "analytics"}

// stack is the production topology the suite runs: its own servers and the ates processes.
type stack struct {
	dir  string // the run's logs: one file per process, the clients' log, the report
	bin  string // the ates binary
	pg   *pgtest.Server
	node *amqptest.Node
	mail *mailtest.Server
	// gateways' addresses ("http://127.0.0.1:port"), and the proxies between each gateway and
	// the broker, which the suite cuts to part a gateway from the broker.
	gateways []string
	proxies  []*amqptest.Proxy
	procs    map[string]*proc
	order    []string // process names in start order
	dbs      map[string]*sql.DB
}

// Process names.
const (
	gateway1    = "gateway-1"
	gateway2    = "gateway-2"
	workerAuth  = "worker-auth"
	workerTasks = "worker-tasks"
	workerAcc1  = "worker-accounting-1"
	workerAcc2  = "worker-accounting-2"
	workerAn    = "worker-analytics"
)

// startStack starts the servers, builds ates and starts every process, waiting until each is
// ready.
func startStack(t *testing.T, ctx context.Context, dir string) *stack {
	t.Helper()
	s := &stack{dir: dir, procs: map[string]*proc{}, dbs: map[string]*sql.DB{}}
	built := make(chan error, 1)
	go func() { built <- s.build(ctx) }()
	// Commits must survive the database's crash, as a production server's do; many processes
	// hold pools to it.
	s.pg = pgtest.Start(t, pgtest.CrashSafe(), pgtest.MaxConnections(400))
	s.node = amqptest.StartNode(t)
	s.mail = mailtest.MustStart(t)
	if err := <-built; err != nil {
		t.Fatalf("building ates: %v", err)
	}
	for range 2 {
		s.proxies = append(s.proxies, amqptest.StartProxy(t, s.node.URL()))
		s.gateways = append(s.gateways, "http://127.0.0.1:"+strconv.Itoa(freePort(t)))
	}
	common := []string{
		"PATH=" + os.Getenv("PATH"),
		"ATES_DATABASE_URL=" + s.pg.URL("ates"),
		"ATES_SMTP_URL=" + s.mail.URL(),
		"ATES_ADMIN_USERNAME=" + adminUsername, "ATES_ADMIN_PASSWORD=" + adminPassword,
		"ATES_LOG_LEVEL=info", "ATES_SHUTDOWN_TIMEOUT=10s",
	}
	add := func(name string, amqpURL string, extra []string, args ...string) {
		env := append(append([]string{}, common...), "ATES_AMQP_URL="+amqpURL, "ATES_DATA_DIR="+filepath.Join(dir, "data", name))
		p := &proc{name: name, bin: s.bin, args: args, env: append(env, extra...), logPath: filepath.Join(dir, name+".log")}
		s.procs[name] = p
		s.order = append(s.order, name)
	}
	for i, name := range []string{gateway1, gateway2} {
		add(name, s.proxies[i].URL(s.node.URL()), []string{"ATES_HTTP_ADDR=" + strings.TrimPrefix(s.gateways[i], "http://")}, "gateway")
	}
	add(workerAuth, s.node.URL(), nil, "worker", "auth")
	add(workerTasks, s.node.URL(), nil, "worker", "tasks")
	add(workerAcc1, s.node.URL(), nil, "worker", "accounting")
	add(workerAcc2, s.node.URL(), nil, "worker", "accounting")
	add(workerAn, s.node.URL(), nil, "worker", "analytics")
	t.Cleanup(s.kill)
	// All at once, as a deployment does: they race to create the databases and migrate.
	var wg sync.WaitGroup
	errs := make([]error, len(s.order))
	for i, name := range s.order {
		wg.Go(func() { errs[i] = s.procs[name].start(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("starting the stack: %v (logs in %s)", err, dir)
	}
	for _, c := range contexts {
		db, err := sql.Open("postgres", s.pg.URL("ates_"+c)+"&connect_timeout=5")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(4)
		s.dbs[c] = db
		t.Cleanup(func() { db.Close() })
	}
	return s
}

// build compiles the ates binary once, into the run's directory.
func (s *stack) build(ctx context.Context) error {
	s.bin = filepath.Join(s.dir, "ates")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "./cmd/ates")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// kill ends every process still running (the end of the test, also a failed one).
func (s *stack) kill() {
	for _, p := range s.procs {
		p.kill()
	}
}

// stopAll stops every process as an operator does (SIGTERM) and returns the processes that did
// not stop cleanly within the shutdown bound (R-OPS-5).
func (s *stack) stopAll() []string {
	var bad []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range s.order {
		wg.Go(func() {
			if err := s.procs[name].stop(30 * time.Second); err != nil {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s: %v", name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return bad
}

// instance is the feed instance id the gateway's current run logged (its feed queues carry it).
func (s *stack) instance(gw int) (string, error) {
	name := []string{gateway1, gateway2}[gw]
	m := instanceLine.FindAllStringSubmatch(s.procs[name].output(), -1)
	if m == nil {
		return "", fmt.Errorf("%s logged no feed instance", name)
	}
	return m[len(m)-1][1], nil
}

var instanceLine = regexp.MustCompile(`msg="gateway feeds" instance=(\S+)`)

// proc is one ates process, restartable, its output appended to one log file across runs.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	exit   error
	out    *procOutput
	starts int
}

// procOutput is a process run's output: appended to the log file and kept for matching.
type procOutput struct {
	file *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (o *procOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	return o.file.Write(p)
}

func (o *procOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// readyLine is what each kind of process prints once it serves.
func (p *proc) readyLine() string {
	if p.args[0] == "gateway" {
		return "aTES is up"
	}
	return `msg="workers running"`
}

// start runs the process and waits until it is ready (a minute at most).
func (p *proc) start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return fmt.Errorf("%s is running", p.name)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	p.starts++
	fmt.Fprintf(f, "==== %s: start %d at %s: ates %s\n", p.name, p.starts, time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	out := &procOutput{file: f}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = out, out
	// Killed with the suite should the suite itself die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		p.mu.Unlock()
		return err
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.out, p.exit = cmd, exited, out, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.exit = err
		p.mu.Unlock()
		fmt.Fprintf(f, "==== %s: exited at %s: %v\n", p.name, time.Now().Format(time.RFC3339Nano), err)
		f.Close()
		close(exited)
	}()
	p.mu.Unlock()

	ready := p.readyLine()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), ready) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting: %v", p.name, p.exitErr())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after a minute", p.name)
		}
	}
	return nil
}

func (p *proc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// output is the current run's output.
func (p *proc) output() string {
	p.mu.Lock()
	out := p.out
	p.mu.Unlock()
	if out == nil {
		return ""
	}
	return out.String()
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(timeout time.Duration) error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return p.exitErr()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("did not stop within %v", timeout)
	}
}

// freePort returns a TCP port nobody listens on at the moment.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ready reports whether the gateway answers /readyz with 200.
func ready(base string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	res, err := c.Get(base + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}
