package outbox_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestRelayReadsThroughTheUnsentIndex: R-EVT-4 — the outbox keeps every sent row as the
// context's event history, so the relay's read of the oldest unsent rows must not grow with
// it: with 20 000 sent rows and a few unsent ones, and fresh statistics, the planner reads them
// through the partial index of unsent rows, in id order, on a plain session (no plan settings),
// from the start of the index and from a relay's mark alike.
func TestRelayReadsThroughTheUnsentIndex(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		client := MustContextDB(t, db)
		w := MustWriter(t, db)
		MustAppend(t, client, w, MustRecords(t, 20_000)...)
		if _, err := db.SQL.ExecContext(ctx, "UPDATE outbox_events SET sent_at = created_at"); err != nil {
			t.Fatal(err)
		}
		MustAppend(t, client, w, MustRecords(t, 3)...)
		analyze := "ANALYZE"
		if db.Dialect == "postgres" {
			analyze = "VACUUM ANALYZE outbox_events" // as autovacuum would have by then
		}
		if _, err := db.SQL.ExecContext(ctx, analyze); err != nil {
			t.Fatal(err)
		}
		r, err := outbox.NewRelay(db, inproc.New(), outbox.RelayOptions{Context: "plan-" + db.Dialect, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		type read struct {
			name  string
			query string
			args  []any
		}
		reads := []read{{name: "from the start"}, {name: "from a mark"}}
		reads[0].query, reads[0].args = r.SelectQuery()
		reads[1].query, reads[1].args = r.FromQuery(10_000)
		for _, rd := range reads {
			p := storagetest.Plan(t, db, rd.query, rd.args, false)
			if !strings.Contains(p, eventschema.UnsentIndex) {
				t.Errorf("the relay's read %s does not use %s:\n%s", rd.name, eventschema.UnsentIndex, p)
			}
			for _, bad := range []string{"Seq Scan", "Sort", "TEMP B-TREE", "SCAN outbox_events\n"} {
				if strings.Contains(p, bad) {
					t.Errorf("the relay's read %s does %q:\n%s", rd.name, bad, p)
				}
			}
		}
	})
}
