package outbox_test

import (
	"context"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestRowsAreWhatAppendStores: R-EVT-2, R-EVT-4 — Rows renders exactly the rows Append stores
// (so a context inserting them with a statement of its own stores the same events), and refuses
// what Append refuses.
func TestRowsAreWhatAppendStores(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		recs := MustRecords(t, 3)
		rows, err := w.Rows(recs...)
		if err != nil {
			t.Fatal(err)
		}
		MustAppend(t, client, w, recs...)
		stored := mustRows(t, db)
		if len(rows) != len(stored) {
			t.Fatalf("Rows gave %d rows, Append stored %d", len(rows), len(stored))
		}
		for i, r := range rows {
			s := stored[i]
			if r.EventID != s.EventID || r.Name != s.Name || r.Version != int64(s.Version) || r.Key != s.Key || r.Payload != s.Payload {
				t.Errorf("row %d: Rows %+v, Append stored %+v", i, r, s)
			}
		}

		bad := MustRecords(t, 2)
		bad[1].Envelope.Name = "account.nonsense"
		if _, err := w.Rows(bad...); err == nil {
			t.Error("Rows rendered an event the registry does not know")
		}
		if err := w.Append(context.Background(), db.SQL, bad...); err == nil {
			t.Error("Append stored an event the registry does not know")
		}
	})
}

// TestCopyRowsStoresWhatAppendStores: R-EVT-4, R-TASK-4 — rows from Rows written with CopyRows
// in the caller's transaction are the records, in order, awkward keys intact (PostgreSQL's COPY),
// and nothing is stored when the transaction rolls back.
func TestCopyRowsStoresWhatAppendStores(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		if db.Dialect != dialect.Postgres {
			return // COPY is PostgreSQL's; SQLite has no CopyRows path
		}
		MustContextDB(t, db)
		w := MustWriter(t, db)
		ctx := context.Background()
		recs := mustAwkwardRecords(t, 700)
		rows, err := w.Rows(recs...)
		if err != nil {
			t.Fatal(err)
		}
		rolledBack := mustSQLTx(t, db)
		if err := outbox.CopyRows(ctx, rolledBack, rows); err != nil {
			t.Fatal(err)
		}
		if err := rolledBack.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := mustRows(t, db); len(got) != 0 {
			t.Fatalf("%d rows stored by a rolled-back COPY", len(got))
		}
		tx := mustSQLTx(t, db)
		if err := outbox.CopyRows(ctx, tx, rows); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		mustMatchRecords(t, mustRows(t, db), recs)
	})
}
