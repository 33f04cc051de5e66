package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/services/bus/inproc"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// markRig is a fresh PostgreSQL context database with the outbox's tables, a writer, and an
// in-process bus whose every message is collected.
type markRig struct {
	db     *storage.DB
	client *authdb.Client
	w      *outbox.Writer
	b      *inproc.Bus
	got    *collector
}

func mustMarkRig(t *testing.T) markRig {
	t.Helper()
	db := storagetest.MustOpenPostgres(t, storagetest.MustCreatePostgresDatabase(t))
	b := inproc.New()
	return markRig{db: db, client: MustContextDB(t, db), w: MustWriter(t, db), b: b, got: MustCollect(t, context.Background(), b, "#")}
}

// R-EVT-4: a relay reads from its mark, yet a row committed late far below it — a long
// transaction's, holding an id drawn before hundreds of rows that were published meanwhile —
// is still published, by the read from the start the relay makes every FullReadEvery.
func TestRelayFindsLateCommitsBelowItsMark(t *testing.T) {
	t.Parallel()
	rig := mustMarkRig(t)
	db, client, w, b, got := rig.db, rig.client, rig.w, rig.b, rig.got
	ctx := context.Background()

	late, err := client.Tx(ctx) // draws its row's id first, commits last
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	lateRec := MustRecords(t, 1)
	if err := w.Append(ctx, late, lateRec...); err != nil {
		t.Fatal(err)
	}
	var lateID int64
	rows, err := late.QueryContext(ctx, `SELECT id FROM outbox_events WHERE event_id = $1`, lateRec[0].Envelope.ID)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		if err := rows.Scan(&lateID); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Close(); err != nil || lateID == 0 {
		t.Fatalf("the late row's id: %d, %v", lateID, err)
	}
	for range 10 {
		MustAppend(t, client, w, MustRecords(t, 30)...)
	}
	r, err := outbox.NewRelay(db, b, outbox.RelayOptions{Context: "mark-late", BatchSize: 10, PollInterval: 10 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	got.waitFor(t, 300, 30*time.Second)
	eventually(t, 10*time.Second, "the relay's mark past the late row", func() bool { return r.Mark() > lateID })

	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	r.Notify()
	start := time.Now()
	msgs := got.waitFor(t, 301, 10*outbox.FullReadEvery)
	if last := msgs[len(msgs)-1]; last.ID != lateRec[0].Envelope.ID {
		t.Fatalf("last message %s, want the late row's %s", last.ID, lateRec[0].Envelope.ID)
	}
	t.Logf("the late row was published %v after its commit", time.Since(start).Round(time.Millisecond))
	eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
}

// R-EVT-4: the sent history costs a relay's reads nothing even before VACUUM has removed its
// entries from the index of unsent rows: after 20 000 rows published and marked sent, the
// read from the relay's mark (a batch of ids below the last one sent) touches a few dozen
// pages, while a read from the start of the index walks past every sent row (the control:
// those entries are there).
func TestRelayReadsFromItsMark(t *testing.T) {
	t.Parallel()
	rig := mustMarkRig(t)
	db, client, w, b, got := rig.db, rig.client, rig.w, rig.b, rig.got
	MustAppend(t, client, w, MustRecords(t, 20_000)...)
	r, err := outbox.NewRelay(db, b, outbox.RelayOptions{Context: "mark-cost", PollInterval: 10 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runRelay(t, r)
	got.waitFor(t, 20_000, 60*time.Second)
	eventually(t, 10*time.Second, "rows marked sent", func() bool { return unsent(t, db) == 0 })
	MustAppend(t, client, w, MustRecords(t, 3)...)
	got.waitFor(t, 20_003, 10*time.Second)

	var last int64
	if err := db.SQL.QueryRow(`SELECT max(id) FROM outbox_events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	want := last + 1 - outbox.DefaultBatchSize // a batch of ids below the last one sent
	eventually(t, 10*time.Second, "the relay's mark a batch below the last row", func() bool { return r.Mark() == want })
	markQuery, markArgs := r.FromQuery(r.Mark())
	startQuery, startArgs := r.SelectQuery()
	fromMark := mustPagesFetched(t, db, markQuery, markArgs)
	fromStart := mustPagesFetched(t, db, startQuery, startArgs)
	t.Logf("pages fetched: from the mark %d, from the start %d", fromMark, fromStart)
	if fromMark > 64 {
		t.Errorf("the read from the mark touched %d pages, want a few dozen at most", fromMark)
	}
	// The control's cost varies from run to run: each read from the start that passes sent
	// rows dead to every transaction marks their index entries dead,
	// and later reads skip their heap pages. It stays well above the read from the mark.
	if fromStart < 2*fromMark {
		t.Errorf("control: the read from the start touched %d pages, want far more than from the mark (%d)", fromStart, fromMark)
	}
}

// mustPagesFetched runs the query in a transaction of its own and returns the pages it asked of
// the buffer manager (hits and reads) for the outbox table and its indexes, as PostgreSQL's
// statistics count them for the transaction (pg_stat_get_xact_blocks_fetched).
func mustPagesFetched(t *testing.T, db *storage.DB, query string, args []any) int {
	t.Helper()
	ctx := context.Background()
	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const fetched = `SELECT COALESCE(sum(pg_stat_get_xact_blocks_fetched(c.oid)), 0) FROM pg_class c
		WHERE c.oid = 'outbox_events'::regclass
		   OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'outbox_events'::regclass)`
	var before, after int
	if err := tx.QueryRowContext(ctx, fetched).Scan(&before); err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, fetched).Scan(&after); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows read, %d pages fetched", n, after-before)
	return after - before
}
