// Package fault tells a temporary failure — a database restarting, a connection refused, a
// broker away, a lock conflict — from a deterministic one, in one place for the whole of aTES
// (R-REL-2, R-REL-4). Consumers retry a transient failure for as long as it lasts without
// counting it toward an event's dead-letter attempts; the outbox relay gives up its lock on
// one; the gateway answers it with UNAVAILABLE and a retryAfter.
package fault

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"
	amqp "github.com/rabbitmq/amqp091-go"
	"modernc.org/sqlite"

	"github.com/uberpopug/ates/services/errs"
)

// Kinds of failure, from what IsTransient and RetryAfter decide.
type Kind int

const (
	// Deterministic failures fail again when retried: bad data, a bug, a constraint.
	Deterministic Kind = iota
	// Contention is a conflict with concurrent work that a prompt retry usually wins: a
	// serialization failure, a deadlock, a busy SQLite file, a full connection table.
	Contention
	// Outage is a server or the way to it being down: refused, reset or dropped connections,
	// a server shutting down or starting up, a lost broker channel.
	Outage
)

// Retry-after hints, in seconds, that RetryAfter gives clients (R-API-4, R-REL-4).
const (
	// ContentionRetryAfter is the hint for Contention: the conflict is usually over at once.
	ContentionRetryAfter = 1
	// OutageRetryAfter is the hint for an Outage: a restarting server is back in seconds, and
	// a request costs little while it is away (connections fail fast), so clients may poll.
	OutageRetryAfter = 2
)

// IsTransient reports whether err is a temporary failure worth retrying as it is (R-REL-2).
// ctx is the caller's context: a deadline inside the call while ctx is alive is transient (a
// connect timeout, a pool's own limit), but the caller's own end is not a failure of anyone
// else and is never transient.
func IsTransient(ctx context.Context, err error) bool {
	return Classify(ctx, err) != Deterministic
}

// Classify says which kind of failure err is; see IsTransient for ctx.
func Classify(ctx context.Context, err error) Kind {
	if err == nil {
		return Deterministic
	}
	if ctx != nil && ctx.Err() != nil {
		return Deterministic // the caller stopped or ran out of time
	}
	if e, ok := errs.As(err); ok {
		if e.Code == errs.Unavailable {
			return Outage
		}
		return Deterministic // a coded error is the application's verdict
	}
	var marked interface{ Transient() Kind }
	if errors.As(err, &marked) {
		return marked.Transient()
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return classifyPostgres(pqErr)
	}
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		switch sqliteErr.Code() & 0xff { // the primary result code
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return Contention
		}
		return Deterministic
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Outage // not the caller's deadline (checked above): a call's own one
	}
	if errors.Is(err, context.Canceled) {
		return Deterministic
	}
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) {
		if amqpErr.Recover || amqpErr.Code == amqp.ConnectionForced || amqpErr.Code == amqp.ChannelError ||
			amqpErr.Code == amqp.ResourceError {
			return Outage
		}
		return Deterministic
	}
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, net.ErrClosed):
		return Outage
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) {
		return Outage // dialling, reading or writing a connection, or finding its host
	}
	return Deterministic
}

// classifyPostgres sorts PostgreSQL's error codes (SQLSTATE).
func classifyPostgres(e *pq.Error) Kind {
	switch e.Code {
	case "40001", "40P01", "53300": // serialization failure, deadlock, too many connections
		return Contention
	case "57P01", "57P02", "57P03": // admin shutdown, crash shutdown, cannot connect now
		return Outage
	}
	if e.Code.Class() == "08" { // connection exception
		return Outage
	}
	return Deterministic
}

// RetryAfter is the number of seconds a client is told to wait before retrying a transient
// err (R-API-4): an UNAVAILABLE error's own retryAfter, ContentionRetryAfter for contention,
// OutageRetryAfter otherwise.
func RetryAfter(ctx context.Context, err error) int {
	if e, ok := errs.As(err); ok && e.Code == errs.Unavailable {
		if s, ok := e.Meta["retryAfter"].(int); ok && s > 0 {
			return s
		}
		return OutageRetryAfter
	}
	if Classify(ctx, err) == Contention {
		return ContentionRetryAfter
	}
	return OutageRetryAfter
}

// Transient marks err as a temporary failure of the given kind (Contention or Outage), for
// failures the classification cannot recognise by type, such as a transport's own "not
// connected". Transient(nil, …) is nil.
func Transient(err error, kind Kind) error {
	if err == nil {
		return nil
	}
	return &transient{err: err, kind: kind}
}

type transient struct {
	err  error
	kind Kind
}

func (t *transient) Error() string   { return t.err.Error() }
func (t *transient) Unwrap() error   { return t.err }
func (t *transient) Transient() Kind { return t.kind }

// String names the kind in logs.
func (k Kind) String() string {
	switch k {
	case Contention:
		return "contention"
	case Outage:
		return "outage"
	default:
		return "deterministic"
	}
}
