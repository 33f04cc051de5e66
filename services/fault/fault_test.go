package fault_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/lib/pq"
	amqp "github.com/rabbitmq/amqp091-go"
	_ "modernc.org/sqlite"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/fault"
)

func refused() error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
}

// TestClassify: what R-REL-2 calls temporary — a database restarting, a connection refused or
// reset, a broker away, contention — is transient; everything else, and the caller's own end,
// is deterministic.
func TestClassify(t *testing.T) {
	t.Parallel()
	alive := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name string
		ctx  context.Context
		err  error
		want fault.Kind
	}{
		{"nil", alive, nil, fault.Deterministic},
		{"plain error", alive, errors.New("boom"), fault.Deterministic},
		{"bad connection", alive, fmt.Errorf("commit: %w", driver.ErrBadConn), fault.Outage},
		{"connection refused", alive, fmt.Errorf("begin: %w", refused()), fault.Outage},
		{"connection reset", alive, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, fault.Outage},
		{"EOF", alive, fmt.Errorf("reading: %w", io.EOF), fault.Outage},
		{"unexpected EOF", alive, io.ErrUnexpectedEOF, fault.Outage},
		{"host not found", alive, &net.DNSError{Err: "no such host", Name: "postgres", IsNotFound: true}, fault.Outage},
		{"connection exception class 08", alive, &pq.Error{Code: "08006"}, fault.Outage},
		{"admin shutdown", alive, fmt.Errorf("x: %w", &pq.Error{Code: "57P01"}), fault.Outage},
		{"crash shutdown", alive, &pq.Error{Code: "57P02"}, fault.Outage},
		{"cannot connect now", alive, &pq.Error{Code: "57P03"}, fault.Outage},
		{"too many connections", alive, &pq.Error{Code: "53300"}, fault.Contention},
		{"serialization failure", alive, &pq.Error{Code: "40001"}, fault.Contention},
		{"deadlock", alive, &pq.Error{Code: "40P01"}, fault.Contention},
		{"unique violation", alive, &pq.Error{Code: "23505"}, fault.Deterministic},
		{"syntax error", alive, &pq.Error{Code: "42601"}, fault.Deterministic},
		{"a call's own deadline, caller alive", alive, fmt.Errorf("query: %w", context.DeadlineExceeded), fault.Outage},
		{"the caller's own deadline", cancelled, fmt.Errorf("query: %w", context.DeadlineExceeded), fault.Deterministic},
		{"the caller stopped, while the database was down", cancelled, refused(), fault.Deterministic},
		{"cancelled", alive, context.Canceled, fault.Deterministic},
		{"broker channel closed", alive, fmt.Errorf("publish: %w", amqp.ErrClosed), fault.Outage},
		{"broker forced the connection closed", alive, &amqp.Error{Code: amqp.ConnectionForced, Server: true}, fault.Outage},
		{"broker refused access", alive, &amqp.Error{Code: amqp.AccessRefused, Server: true}, fault.Deterministic},
		{"unavailable coded error", alive, errs.Retryable(7, "busy"), fault.Outage},
		{"other coded error", alive, errs.E(errs.NotFound, "no such task"), fault.Deterministic},
		{"marked transient", alive, fault.Transient(errors.New("not connected"), fault.Outage), fault.Outage},
		{"marked contention", alive, fmt.Errorf("w: %w", fault.Transient(errors.New("busy"), fault.Contention)), fault.Contention},
	}
	for _, c := range cases {
		if got := fault.Classify(c.ctx, c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
		if got, want := fault.IsTransient(c.ctx, c.err), c.want != fault.Deterministic; got != want {
			t.Errorf("%s: IsTransient = %v, want %v", c.name, got, want)
		}
	}
}

// TestRetryAfter: contention is retried after a second, an outage after OutageRetryAfter, an
// UNAVAILABLE error after what it says (R-API-4).
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		err  error
		want int
	}{
		{&pq.Error{Code: "40P01"}, fault.ContentionRetryAfter},
		{refused(), fault.OutageRetryAfter},
		{driver.ErrBadConn, fault.OutageRetryAfter},
		{errs.Retryable(9, "the password hasher is busy"), 9},
	}
	for _, c := range cases {
		if got := fault.RetryAfter(ctx, c.err); got != c.want {
			t.Errorf("RetryAfter(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestRealSQLiteBusyIsContention: the error a real SQLite file gives a second writer is
// recognised (R-REL-2).
func TestRealSQLiteBusyIsContention(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := a.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(`INSERT INTO t VALUES (2)`)
	if err == nil {
		t.Fatal("a second writer was not refused")
	}
	if got := fault.Classify(context.Background(), err); got != fault.Contention {
		t.Errorf("Classify(%v) = %v, want Contention", err, got)
	}
}

// TestRealRefusedConnectionIsOutage: what lib/pq returns for a server that is not there is
// recognised (R-REL-2).
func TestRealRefusedConnectionIsOutage(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	db, err := sql.Open("postgres", "postgres://postgres@"+addr+"/x?sslmode=disable&connect_timeout=5")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PingContext(context.Background())
	if err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
	if !fault.IsTransient(context.Background(), err) {
		t.Errorf("IsTransient(%v) = false, want true", err)
	}
}
