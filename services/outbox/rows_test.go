package outbox_test

import (
	"context"
	"testing"

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
