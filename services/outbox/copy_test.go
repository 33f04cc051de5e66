package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// preparingTx is a *sql.Tx that counts the statements Append prepares: on PostgreSQL a large
// chunk appended through a Preparer goes by COPY, which lib/pq only runs as a prepared statement.
type preparingTx struct {
	*sql.Tx
	prepared atomic.Int64
}

func (t *preparingTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	t.prepared.Add(1)
	return t.Tx.PrepareContext(ctx, query)
}

func mustSQLTx(t *testing.T, db *storage.DB) *preparingTx {
	t.Helper()
	tx, err := db.SQL.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return &preparingTx{Tx: tx}
}

// awkwardKeys are aggregate keys holding what COPY's text format and the newline-joined
// columns of the INSERT must escape or avoid.
var awkwardKeys = []string{"tab\there", "new\nline", `back\slash`, `\N`, "crlf\r\n", "popug 🦜", ""}

// mustAwkwardRecords returns n valid records, some with awkward aggregate keys.
func mustAwkwardRecords(t *testing.T, n int) []outbox.Record {
	t.Helper()
	recs := MustRecords(t, n)
	for i, k := range awkwardKeys {
		if k != "" {
			recs[i*997%n].Key = k
		}
	}
	return recs
}

// mustMatchRecords checks that rows are recs in order, unsent, with one created_at.
func mustMatchRecords(t *testing.T, rows []outboxRow, recs []outbox.Record) {
	t.Helper()
	if len(rows) != len(recs) {
		t.Fatalf("%d rows, want %d", len(rows), len(recs))
	}
	for i, r := range rows {
		e := recs[i].Envelope
		if r.EventID != e.ID || r.Name != e.Name || r.Version != e.Version || r.Key != recs[i].Key || r.Sent {
			t.Fatalf("row %d = %+v, want event %s key %q unsent", i, r, e.ID, recs[i].Key)
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if r.Payload != string(want) {
			t.Fatalf("row %d payload = %s, want the envelope %s", i, r.Payload, want)
		}
		if !r.Created.Equal(rows[0].Created) || time.Since(r.Created) > time.Minute || time.Since(r.Created) < 0 {
			t.Fatalf("row %d created_at = %v (row 0: %v)", i, r.Created, rows[0].Created)
		}
	}
}

// R-EVT-4, R-TASK-4: a batch appended through a *sql.Tx (COPY on PostgreSQL, in chunks of
// 5 000) stores exactly the rows the INSERTs store through an Ent transaction — same columns,
// same order of ids, awkward keys intact — and commits with the caller's transaction.
func TestAppendThroughSQLTxStoresWhatInsertsStore(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()
		for _, n := range []int{300, 10001} { // one COPY; three, in a savepoint
			inserted := mustAwkwardRecords(t, n)
			MustAppend(t, client, w, inserted...)
			viaInsert := mustRows(t, db)
			mustMatchRecords(t, viaInsert, inserted)

			copied := make([]outbox.Record, len(inserted))
			copy(copied, inserted)
			for i := range copied { // event_id is unique
				copied[i].Envelope.ID = uuid.NewString()
			}
			tx := mustSQLTx(t, db)
			if err := w.Append(ctx, tx, copied...); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			if db.Dialect == dialect.Postgres && tx.prepared.Load() == 0 {
				t.Fatal("Append through a *sql.Tx did not COPY on PostgreSQL")
			}
			viaCopy := mustRows(t, db)[len(viaInsert):]
			mustMatchRecords(t, viaCopy, copied)
			for i := range viaCopy {
				a, b := viaInsert[i], viaCopy[i]
				if b.ID <= viaInsert[len(viaInsert)-1].ID || (i > 0 && b.ID <= viaCopy[i-1].ID) {
					t.Fatalf("row %d id %d out of append order", i, b.ID)
				}
				if a.Name != b.Name || a.Version != b.Version || a.Key != b.Key ||
					strings.Replace(a.Payload, `"eventId":"`+a.EventID, `"eventId":"`+b.EventID, 1) != b.Payload || a.Sent != b.Sent {
					t.Fatalf("row %d: INSERT stored %+v, COPY %+v", i, a, b)
				}
			}
			if _, err := db.SQL.Exec("DELETE FROM outbox_events"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// R-EVT-2: through a *sql.Tx too, a refused batch — an invalid record, or the database refusing
// a COPY — leaves nothing behind, and a batch of several chunks leaves the caller's
// transaction usable (savepoint).
func TestAppendThroughSQLTxRefusedLeavesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		n      int
		mutate func(recs []outbox.Record)
		// goesOn: the transaction may go on after the refusal (else the caller rolls it back).
		goesOn bool
	}{
		{"invalid record in one chunk", 1500, func(recs []outbox.Record) {
			recs[1200].Envelope.Data = json.RawMessage(`{"role":"EMPEROR"}`)
		}, true},
		{"invalid record in the third chunk", 10001, func(recs []outbox.Record) {
			recs[10000].Envelope.Data = json.RawMessage(`{"role":"EMPEROR"}`)
		}, true},
		{"duplicate event id in the third chunk", 10001, func(recs []outbox.Record) {
			recs[10000].Envelope.ID = recs[3].Envelope.ID
		}, true},
		{"duplicate event id in one chunk", 1500, func(recs []outbox.Record) {
			recs[1200].Envelope.ID = recs[3].Envelope.ID
		}, false},
	}
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				recs := MustRecords(t, tt.n)
				tt.mutate(recs)
				tx := mustSQLTx(t, db)
				if err := w.Append(ctx, tx, recs...); err == nil {
					t.Fatal("Append accepted the batch")
				}
				var good []outbox.Record
				if tt.goesOn {
					good = MustRecords(t, 300) // a COPY on PostgreSQL
					if err := w.Append(ctx, tx, good...); err != nil {
						t.Fatalf("the transaction is unusable after a refused Append: %v", err)
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
				} else if err := tx.Rollback(); err != nil {
					t.Fatal(err)
				}
				mustMatchRecords(t, mustRows(t, db), good)
				if _, err := db.SQL.Exec("DELETE FROM outbox_events"); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}
