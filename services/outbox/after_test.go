package outbox_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// R-EVT-4: AppendAfter stores the events in the same statement as the change they record, and
// only if the change changed a row: a completed change stores every record in order; a change
// that finds nothing (the row moved on meanwhile) stores nothing; an invalid record is refused
// before anything runs, the change included. SQLite has no data-modifying CTE: refused.
func TestAppendAfter(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		MustContextDB(t, db)
		w := MustWriter(t, db)
		const change = `UPDATE test_effects SET consumer = 'done' WHERE event_id = $1 AND consumer = $2 RETURNING event_id`
		if db.Dialect != "postgres" {
			if _, err := w.AppendAfter(ctx, db.SQL, change, []any{"a", "open"}, MustRecords(t, 1)...); err == nil {
				t.Fatal("AppendAfter on SQLite succeeded")
			}
			return
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO test_effects (consumer, event_id) VALUES ('open', 'a'), ('open', 'b')`); err != nil {
			t.Fatal(err)
		}
		state := func(id string) string {
			var c string
			if err := db.SQL.QueryRowContext(ctx, `SELECT consumer FROM test_effects WHERE event_id = $1`, id).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}

		recs := MustRecords(t, 3)
		changed, err := w.AppendAfter(ctx, db.SQL, change, []any{"a", "open"}, recs...)
		if err != nil || !changed {
			t.Fatalf("AppendAfter = %v, %v; want true, nil", changed, err)
		}
		rows := mustRows(t, db)
		if len(rows) != len(recs) || state("a") != "done" {
			t.Fatalf("%d rows stored and the change left %q, want %d rows and done", len(rows), state("a"), len(recs))
		}
		for i, r := range rows {
			if r.EventID != recs[i].Envelope.ID || r.Key != recs[i].Key || r.Name != recs[i].Envelope.Name || r.Sent {
				t.Fatalf("row %d = %+v, want record %d unsent", i, r, i)
			}
		}

		// The same change again finds the row moved on: nothing is stored.
		changed, err = w.AppendAfter(ctx, db.SQL, change, []any{"a", "open"}, MustRecords(t, 2)...)
		if err != nil || changed {
			t.Fatalf("AppendAfter of a change that changed nothing = %v, %v; want false, nil", changed, err)
		}
		if n := len(mustRows(t, db)); n != len(recs) {
			t.Fatalf("%d rows after a change that changed nothing, want %d", n, len(recs))
		}

		// An invalid record: refused, and the change is not run.
		bad := MustRecords(t, 2)
		bad[1].Envelope.Data = json.RawMessage(`{"accountId":"not-a-uuid"}`)
		if _, err := w.AppendAfter(ctx, db.SQL, change, []any{"b", "open"}, bad...); err == nil {
			t.Fatal("AppendAfter accepted an invalid record")
		}
		if n := len(mustRows(t, db)); n != len(recs) || state("b") != "open" {
			t.Fatalf("after a refused AppendAfter: %d rows (want %d), change left %q (want open)", n, len(recs), state("b"))
		}
		if _, err := w.AppendAfter(ctx, db.SQL, change, []any{"b", "open"}); err == nil {
			t.Fatal("AppendAfter without records succeeded")
		}
	})
}
