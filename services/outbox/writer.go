// Package outbox is the producing half of the event platform's transactional outbox (R-EVT-4):
// a Writer stores events in the caller's transaction, next to the state change that caused
// them, and a Relay publishes the committed rows to the bus and marks them sent. The rows stay
// after they are sent: they are the context's event history.
//
// A crash between commit and publication loses nothing: the row stays unsent and the relay
// publishes it once it runs again. A crash between publication and marking sent publishes the
// event twice; consumers' inboxes (services/inbox) drop the duplicate (R-EVT-5).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/event"
)

// Record is one event to store in the outbox (R-EVT-4).
type Record struct {
	// Key is the id of the aggregate the event is about; events of one aggregate are relayed in
	// the order they were appended.
	Key string
	// Envelope is the event; it is validated against the schema registry before it is stored
	// (R-EVT-2).
	Envelope event.Envelope
}

// Execer runs a statement; an Ent *Tx and a *sql.Tx satisfy it. Append writes through it so
// the events commit or roll back with the caller's state change (R-EVT-4). On PostgreSQL a
// *sql.Tx (or *sql.Conn) also lets Append write large batches with COPY (see Preparer).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Preparer is an Execer that also prepares statements, as a *sql.Tx does (an Ent *Tx does
// not). On PostgreSQL, Append writes a chunk of pgCopyFrom rows or more through it with one
// COPY … FROM STDIN instead of an INSERT: the server neither parses nor plans per row, and
// fills heap pages many rows at a time.
type Preparer interface {
	Execer
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// outboxColumns are the columns Append inserts; id is generated and sent_at stays NULL.
var outboxColumns = []string{"event_id", "name", "version", "aggregate_key", "payload", "created_at"}

// maxRowsPerInsert keeps one INSERT's bind variables under SQLite's limit of 32 766:
// 5 000 rows × 6 columns = 30 000 (PostgreSQL's INSERT binds one array per column, see
// pgInsert; its chunks are as large, so validation and insertion still overlap).
const maxRowsPerInsert = 5000

// parallelValidateFrom is the batch size from which Append validates on every CPU.
const parallelValidateFrom = 1024

// Writer appends validated events to a context's outbox table (R-EVT-2, R-EVT-4).
type Writer struct {
	dialect string
	reg     *event.Registry
	// now is the clock of created_at.
	now func() time.Time
	// taken counts the records Append and Rows were given (see Taken).
	taken atomic.Uint64
}

// NewWriter returns a Writer building SQL for the dialect (dialect.SQLite or dialect.Postgres)
// and validating with reg (R-EVT-2).
func NewWriter(d string, reg *event.Registry) (*Writer, error) {
	if err := checkDialect(d); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("outbox: NewWriter needs a schema registry")
	}
	return &Writer{dialect: d, reg: reg, now: time.Now}, nil
}

func checkDialect(d string) error {
	switch d {
	case dialect.SQLite, dialect.Postgres:
		return nil
	default:
		return fmt.Errorf("outbox: unsupported SQL dialect %q (want %q or %q)", d, dialect.SQLite, dialect.Postgres)
	}
}

// Append validates every record's envelope against the registry and inserts the records into
// the outbox through tx, the caller's transaction, in chunks of up to 5 000 rows: multi-row
// INSERTs, or on PostgreSQL one COPY per chunk when tx is a Preparer and the chunk is large
// (R-EVT-2, R-EVT-4). A record is validated before it is stored, and when any record is invalid
// Append returns an error and leaves nothing behind: tx is as before and may go on. Batches
// larger than one INSERT are validated chunk by chunk while the previous chunk is being
// inserted, inside a savepoint that is rolled back when a later record turns out invalid. After
// a database error the caller must roll tx back.
func (w *Writer) Append(ctx context.Context, tx Execer, recs ...Record) error {
	if len(recs) == 0 {
		return nil
	}
	if tx == nil {
		return errors.New("outbox: Append needs the caller's transaction")
	}
	w.taken.Add(uint64(len(recs)))
	createdAt := w.now().UTC()
	if len(recs) <= maxRowsPerInsert {
		payloads, err := w.encode(recs, 0)
		if err != nil {
			return err
		}
		return w.insert(ctx, tx, recs, payloads, createdAt)
	}
	return w.appendPipelined(ctx, tx, recs, createdAt)
}

// Taken is how many records Append and Rows have been given so far, stored or not. A caller that
// reads it before and after a transaction knows the transaction stored no event when it is
// unchanged, and can leave the relay be (other goroutines' records change it too, so a change
// means "maybe").
func (w *Writer) Taken() uint64 { return w.taken.Load() }

// Row is an outbox row as Append stores it (its columns are outboxColumns).
type Row struct {
	EventID, Name, Key, Payload string
	Version                     int64
	CreatedAt                   time.Time
}

// Rows validates the records as Append does and returns the rows Append would store, in order,
// for a caller that writes them with a statement of its own — one that must commit or roll back
// with the caller's state change (R-EVT-2, R-EVT-4).
func (w *Writer) Rows(recs ...Record) ([]Row, error) {
	w.taken.Add(uint64(len(recs)))
	payloads, err := w.encode(recs, 0)
	if err != nil {
		return nil, err
	}
	createdAt := w.now().UTC()
	rows := make([]Row, len(recs))
	for i, r := range recs {
		rows[i] = Row{
			EventID: r.Envelope.ID, Name: r.Envelope.Name, Version: int64(r.Envelope.Version), Key: r.Key,
			Payload: payloads[i], CreatedAt: createdAt,
		}
	}
	return rows, nil
}

// savepoint brackets a multi-statement Append, so a refused batch leaves nothing behind.
const savepoint = "ates_outbox_append"

// chunk is a validated slice of a batch, ready to insert.
type chunk struct {
	start, end int
	payloads   []string
	err        error
}

// appendPipelined validates chunk n+1 on every CPU while chunk n is being inserted.
func (w *Writer) appendPipelined(ctx context.Context, tx Execer, recs []Record, createdAt time.Time) (err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
		return fmt.Errorf("outbox: opening a savepoint (is tx a transaction?): %w", err)
	}
	defer func() {
		cleanup := context.WithoutCancel(ctx)
		if err != nil {
			if _, rbErr := tx.ExecContext(cleanup, "ROLLBACK TO SAVEPOINT "+savepoint); rbErr != nil {
				err = fmt.Errorf("%w; undoing the events inserted so far also failed, roll the transaction back: %w", err, rbErr)
				return
			}
		}
		if _, relErr := tx.ExecContext(cleanup, "RELEASE SAVEPOINT "+savepoint); relErr != nil && err == nil {
			err = fmt.Errorf("outbox: releasing the savepoint: %w", relErr)
		}
	}()

	vctx, stop := context.WithCancel(ctx)
	chunks := make(chan chunk, 1)
	go func() {
		defer close(chunks)
		for start := 0; start < len(recs); start += maxRowsPerInsert {
			end := min(start+maxRowsPerInsert, len(recs))
			payloads, err := w.encode(recs[start:end], start)
			select {
			case chunks <- chunk{start: start, end: end, payloads: payloads, err: err}:
			case <-vctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() { // the validator is done with recs before Append returns
		stop()
		for range chunks {
		}
	}()
	for c := range chunks {
		if c.err != nil {
			return c.err
		}
		if err := w.insert(ctx, tx, recs[c.start:c.end], c.payloads, createdAt); err != nil {
			return err
		}
	}
	return nil
}

// pgInsert inserts a batch on PostgreSQL with one parameter per column instead of one per
// value: the statement stays a few hundred bytes however many rows it carries, so it is parsed
// and planned in constant time. Each text column travels as one text, one value per line,
// split by string_to_array: splitting on one byte costs the server far less than parsing a
// text[] literal (for the payloads, whose every quote would have to be escaped, it halved the
// bind time), and json.Marshal never writes a raw newline (a newline inside a JSON string is
// escaped). A column holding a newline goes as a text[] instead (pgColumn). WITH ORDINALITY …
// ORDER BY keeps the rows, and so their ids, in the order they were appended.
const pgInsert = "INSERT INTO " + eventschema.OutboxTable + " (event_id, name, version, aggregate_key, payload, created_at)" + `
SELECT r.event_id, r.name, r.version, r.aggregate_key, r.payload, $6::timestamptz
FROM unnest(%s, %s, $3::bigint[], %s, %s)
	WITH ORDINALITY AS r(event_id, name, version, aggregate_key, payload, n)
ORDER BY r.n`

// pgArraysFrom is the batch size from which PostgreSQL gets pgInsert; a smaller batch (a use
// case's few events) gets a plain multi-row VALUES, which PostgreSQL parses and plans faster.
const pgArraysFrom = 16

// pgCopyFrom is the chunk size from which PostgreSQL gets COPY when tx is a Preparer: below
// it, COPY's extra round trips outweigh what it saves.
const pgCopyFrom = 256

// pgCopy streams a chunk into the outbox (text format; lib/pq escapes every value).
const pgCopy = "COPY " + eventschema.OutboxTable + " (event_id, name, version, aggregate_key, payload, created_at) FROM STDIN"

// pgColumn is one text column of pgInsert as parameter $n: its values joined by newlines, or a
// text[] when a value holds a newline (not from json.Marshal; kept correct all the same).
func pgColumn(n int, values []string) (expr string, arg any) {
	size := 0
	for _, v := range values {
		if strings.IndexByte(v, '\n') >= 0 {
			return fmt.Sprintf("$%d::text[]", n), pq.StringArray(values)
		}
		size += len(v) + 1
	}
	var b strings.Builder
	b.Grow(size)
	for i, v := range values {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(v)
	}
	return fmt.Sprintf("string_to_array($%d::text, E'\\n')", n), b.String()
}

// insert writes validated records with one multi-row INSERT, or on PostgreSQL one COPY.
func (w *Writer) insert(ctx context.Context, tx Execer, recs []Record, payloads []string, createdAt time.Time) error {
	if p, ok := tx.(Preparer); ok && w.dialect == dialect.Postgres && len(recs) >= pgCopyFrom {
		return copyIn(ctx, p, len(recs), func(i int) []any {
			r := recs[i]
			return []any{r.Envelope.ID, r.Envelope.Name, int64(r.Envelope.Version), r.Key, payloads[i], createdAt}
		})
	}
	if w.dialect == dialect.Postgres && len(recs) >= pgArraysFrom {
		ids, names, versions, keys := make([]string, len(recs)), make([]string, len(recs)), make([]int64, len(recs)), make([]string, len(recs))
		for i, r := range recs {
			ids[i], names[i], versions[i], keys[i] = r.Envelope.ID, r.Envelope.Name, int64(r.Envelope.Version), r.Key
		}
		idExpr, idArg := pgColumn(1, ids)
		nameExpr, nameArg := pgColumn(2, names)
		keyExpr, keyArg := pgColumn(4, keys)
		payloadExpr, payloadArg := pgColumn(5, payloads)
		query := fmt.Sprintf(pgInsert, idExpr, nameExpr, keyExpr, payloadExpr)
		_, err := tx.ExecContext(ctx, query, idArg, nameArg, pq.Int64Array(versions), keyArg, payloadArg, createdAt)
		if err != nil {
			return fmt.Errorf("outbox: inserting %d events: %w", len(recs), err)
		}
		return nil
	}
	ins := entsql.Dialect(w.dialect).Insert(eventschema.OutboxTable).Columns(outboxColumns...)
	for i, r := range recs {
		ins.Values(r.Envelope.ID, r.Envelope.Name, r.Envelope.Version, r.Key, payloads[i], createdAt)
	}
	query, args, err := ins.QueryErr()
	if err != nil {
		return fmt.Errorf("outbox: building insert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("outbox: inserting %d events: %w", len(recs), err)
	}
	return nil
}

// CopyRows writes rows from Rows into the outbox with one COPY through tx, the caller's
// transaction on PostgreSQL (R-EVT-4).
func CopyRows(ctx context.Context, tx Preparer, rows []Row) error {
	return copyIn(ctx, tx, len(rows), func(i int) []any {
		r := rows[i]
		return []any{r.EventID, r.Name, r.Version, r.Key, r.Payload, r.CreatedAt}
	})
}

// copyIn writes n validated rows (outboxColumns' values, by row) with one COPY through tx. The
// rows are streamed as they are added (lib/pq flushes every 64 KiB), so the server inserts while
// the rest are still sent; the final Exec waits for the server's verdict on the whole chunk.
func copyIn(ctx context.Context, tx Preparer, n int, row func(i int) []any) (err error) {
	stmt, err := tx.PrepareContext(ctx, pgCopy)
	if err != nil {
		return fmt.Errorf("outbox: copying %d events: %w", n, err)
	}
	defer func() { // ends the COPY (a no-op after the final Exec)
		if cerr := stmt.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("outbox: copying %d events: %w", n, cerr)
		}
	}()
	for i := range n {
		if _, err := stmt.ExecContext(ctx, row(i)...); err != nil {
			return fmt.Errorf("outbox: copying %d events: %w", n, err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return fmt.Errorf("outbox: copying %d events: %w", n, err)
	}
	return nil
}

// encode marshals every envelope and validates the bytes that will be stored, on every CPU for
// large batches. It reports the first invalid record, numbered from offset.
func (w *Writer) encode(recs []Record, offset int) ([]string, error) {
	payloads := make([]string, len(recs))
	errs := make([]error, len(recs))
	// check encodes and validates record i into payloads[i], through a buffer of its caller's.
	check := func(i int, buf *[]byte) {
		r := recs[i]
		if r.Key == "" {
			errs[i] = errors.New("empty aggregate key")
			return
		}
		raw, err := r.Envelope.AppendJSON((*buf)[:0])
		*buf = raw
		if err != nil {
			errs[i] = fmt.Errorf("encoding: %w", err)
			return
		}
		if err := w.reg.Check(raw); err != nil {
			errs[i] = err
			return
		}
		payloads[i] = string(raw)
	}
	workers := runtime.GOMAXPROCS(0)
	if len(recs) < parallelValidateFrom || workers == 1 {
		var buf []byte
		for i := range recs {
			if check(i, &buf); errs[i] != nil {
				break
			}
		}
	} else {
		var wg sync.WaitGroup
		per := (len(recs) + workers - 1) / workers
		for start := 0; start < len(recs); start += per {
			end := min(start+per, len(recs))
			wg.Go(func() {
				var buf []byte
				for i := start; i < end; i++ {
					if check(i, &buf); errs[i] != nil {
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			e := recs[i].Envelope
			return nil, fmt.Errorf("outbox: record %d (event %s v%d %s) not stored: %w", offset+i, e.Name, e.Version, e.ID, err)
		}
	}
	return payloads, nil
}
