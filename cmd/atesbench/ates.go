package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
	amqp "github.com/rabbitmq/amqp091-go"
)

// The aTES under measurement: the `ates` binary, built from this module (or given), run as the
// product runs — the embedded default, or a gateway and a worker on PostgreSQL and RabbitMQ.

// contexts are aTES's bounded contexts, each with a database of its own in production.
var contexts = []string{"auth", "tasks", "accounting", "analytics"}

// servers are the flags that name the binary and the servers a production-shaped run uses.
type servers struct {
	ates     string
	postgres string
	amqp     string
}

func (s *servers) flags(fs *flag.FlagSet) {
	fs.StringVar(&s.ates, "ates", "", "the ates binary to run (default: build ./cmd/ates of this module)")
	fs.StringVar(&s.postgres, "postgres", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL maintenance database URL of the production shape (a database per context is created and dropped)")
	fs.StringVar(&s.amqp, "amqp", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL of the production shape (an exchange of its own is declared and deleted)")
}

// binary returns the ates binary to run, building it into dir unless one was given.
func (s *servers) binary(ctx context.Context, dir string, log io.Writer) (string, error) {
	if s.ates != "" {
		return s.ates, nil
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module to build ates from: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" {
		return "", errors.New("not inside the aTES module: run from the repository or pass -ates")
	}
	bin := filepath.Join(dir, "ates")
	fmt.Fprintf(log, "building %s from %s\n", bin, root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/ates")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building ates: %w", err)
	}
	return bin, nil
}

// syncBuffer is an io.Writer the process's output goroutines and the reader share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var upLine = regexp.MustCompile(`aTES is up: GraphQL (http://\S+)/graphql`)

// atesProcess is one running `ates` command.
type atesProcess struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan error
	// base is the gateway's URL and metrics its metrics listener's (commands that serve HTTP).
	base, metrics string
}

// startAtes runs `bin args…` with the environment (and nothing else of this process's); for
// commands that serve HTTP it adds a metrics listener of their own serving Go's profiles and
// waits until the gateway is up. The worker serves no HTTP.
func startAtes(ctx context.Context, bin string, environ []string, args ...string) (*atesProcess, error) {
	name := "embedded"
	if len(args) > 0 {
		name = args[0]
	}
	p := &atesProcess{name: name, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	if name != "worker" {
		metrics, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p.metrics = "http://" + metrics
		p.cmd.Env = append(p.cmd.Env, "ATES_METRICS_ADDR="+metrics, "ATES_PPROF=1")
	}
	p.cmd.Env = append(p.cmd.Env, environ...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	if name == "worker" {
		return p, nil
	}
	deadline := time.After(60 * time.Second)
	for {
		if m := upLine.FindStringSubmatch(p.stdout.String()); m != nil {
			p.base = m[1]
			return p, nil
		}
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("ates %v exited early: %v\n%s", args, err, p.stderr.String())
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("ates %v did not come up\n%s", args, p.stderr.String())
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM, as a service manager would, and waits for the process to end.
func (p *atesProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("ates %s stopped with %v\n%s", p.name, err, p.stderr.String())
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("ates %s did not stop within 30s", p.name)
	}
}

func (p *atesProcess) pid() int { return p.cmd.Process.Pid }

// get reads a path of the process's metrics listener.
func (p *atesProcess) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metrics+path, nil)
	if err != nil {
		return nil, err
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %.200s", path, res.Status, b)
	}
	return b, err
}

// gauges reads unlabelled samples of the process's /metrics by name.
func (p *atesProcess) gauges(ctx context.Context, names ...string) (map[string]float64, error) {
	b, err := p.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		for _, n := range names {
			if f[0] == n {
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					return nil, fmt.Errorf("metric %s: %w", line, err)
				}
				out[n] = v
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no metric %s", n)
		}
	}
	return out, nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// embeddedEnviron is the environment of the embedded default (SQLite, in-process bus) in dir.
func embeddedEnviron(dir string) []string {
	return []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir, "ATES_LOG_LEVEL=warn",
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}
}

// production is a fresh production shape on the servers: databases named Name_<context> and
// an exchange Name with its own durable queues, removed by remove.
type production struct {
	Name    string
	Environ []string
	servers *servers
}

func newProduction(ctx context.Context, s *servers, dir string) (*production, error) {
	if err := pingPostgres(ctx, s.postgres); err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s: %w", s.postgres, err)
	}
	conn, err := amqp.Dial(s.amqp)
	if err != nil {
		return nil, fmt.Errorf("RabbitMQ at %s: %w", s.amqp, err)
	}
	conn.Close()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "ates_bench_" + hex.EncodeToString(b[:])
	u, err := url.Parse(s.postgres)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &production{Name: name, servers: s, Environ: []string{
		"ATES_HTTP_ADDR=127.0.0.1:0", "ATES_DATA_DIR=" + dir, "ATES_LOG_LEVEL=warn",
		"ATES_DATABASE_URL=" + u.String(), "ATES_AMQP_URL=" + s.amqp, "ATES_AMQP_EXCHANGE=" + name,
		"ATES_ADMIN_USERNAME=boss", "ATES_ADMIN_PASSWORD=boss-beak-print",
	}}, nil
}

func pingPostgres(ctx context.Context, dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// remove drops the shape's databases, exchange and queues.
func (p *production) remove() error {
	var errs []error
	db, err := sql.Open("postgres", p.servers.postgres)
	if err == nil {
		for _, c := range contexts {
			if _, err := db.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pq.QuoteIdentifier(p.Name+"_"+c))); err != nil {
				errs = append(errs, err)
			}
		}
		db.Close()
	} else {
		errs = append(errs, err)
	}
	conn, err := amqp.Dial(p.servers.amqp)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := ch.ExchangeDelete(p.Name, false, false); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, c := range []string{"tasks", "accounting", "analytics"} { // the consuming contexts' queues
		if _, err := ch.QueueDelete(p.Name+".ates."+c, false, false, false); err != nil {
			errs = append(errs, err)
			break // a failed operation closes the channel
		}
	}
	return errors.Join(errs...)
}
