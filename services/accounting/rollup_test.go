package accounting_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// rollups is what the per-day rollups and entry counts hold, or what the entries say they
// should, as comparable rows.
type rollups struct {
	AccountDays map[string]string // account|day → fees rewards payouts entries
	CompanyDays map[string]string // day → fees rewards entries
	Counts      map[string]int64  // account → entries
}

func (h *harness) mustQueryRows(tb testing.TB, q string, scan func(cols []any) (string, string)) map[string]string {
	tb.Helper()
	rows, err := h.db.SQL.Query(q)
	if err != nil {
		tb.Fatalf("%s: %v", q, err)
	}
	out := map[string]string{}
	for rows.Next() {
		cols := []any{new(string), new(string), new(int64), new(int64), new(int64), new(int64)}
		if err := rows.Scan(cols...); err != nil {
			tb.Fatal(err)
		}
		k, v := scan(cols)
		out[k] = v
	}
	mustRowsDone(tb, rows)
	return out
}

// mustStoredRollups reads the rollups and entry counts as stored.
func (h *harness) mustStoredRollups(tb testing.TB) rollups {
	tb.Helper()
	return h.mustRollupsOf(tb,
		`SELECT account_id, day, fees, rewards, payouts, entries FROM account_days`,
		`SELECT day, '', fees, rewards, entries, 0 FROM company_days`,
		`SELECT public_id, '', entry_count, 0, 0, 0 FROM accounts`)
}

// mustEntryRollups recomputes the rollups and entry counts from the entries.
func (h *harness) mustEntryRollups(tb testing.TB) rollups {
	tb.Helper()
	return h.mustRollupsOf(tb,
		`SELECT account_id, day, COALESCE(SUM(CASE WHEN type = 'FEE' THEN amount ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN type = 'REWARD' THEN amount ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN type = 'PAYOUT' THEN amount ELSE 0 END), 0), COUNT(*)
		FROM entries GROUP BY account_id, day`,
		`SELECT day, '', COALESCE(SUM(CASE WHEN type = 'FEE' THEN amount ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN type = 'REWARD' THEN amount ELSE 0 END), 0), COUNT(*), 0
		FROM entries WHERE type IN ('FEE', 'REWARD') GROUP BY day`,
		`SELECT a.public_id, '', COUNT(e.id), 0, 0, 0 FROM accounts a LEFT JOIN entries e ON e.account_id = a.public_id
		GROUP BY a.public_id`)
}

func (h *harness) mustRollupsOf(tb testing.TB, accountDays, companyDays, counts string) rollups {
	tb.Helper()
	ints := func(cols []any, n int) string {
		s := ""
		for _, c := range cols[2 : 2+n] {
			s += fmt.Sprint(*c.(*int64), " ")
		}
		return s
	}
	r := rollups{Counts: map[string]int64{}}
	r.AccountDays = h.mustQueryRows(tb, accountDays, func(c []any) (string, string) {
		return *c[0].(*string) + "|" + *c[1].(*string), ints(c, 4)
	})
	r.CompanyDays = h.mustQueryRows(tb, companyDays, func(c []any) (string, string) { return *c[0].(*string), ints(c, 3) })
	for k, v := range h.mustQueryRows(tb, counts, func(c []any) (string, string) { return *c[0].(*string), ints(c, 1) }) {
		var n int64
		fmt.Sscan(v, &n)
		r.Counts[k] = n
	}
	return r
}

// mustRollupsMatchEntries checks that the rollups and entry counts are what the entries sum to
// (R-ACC-3), and that balances equal their entries (mustConsistent).
func (h *harness) mustRollupsMatchEntries(tb testing.TB, when string) {
	tb.Helper()
	h.mustConsistent(tb)
	got, want := h.mustStoredRollups(tb), h.mustEntryRollups(tb)
	if !maps.Equal(got.AccountDays, want.AccountDays) {
		tb.Errorf("%s: account days\n stored   %v\n from entries %v", when, got.AccountDays, want.AccountDays)
	}
	if !maps.Equal(got.CompanyDays, want.CompanyDays) {
		tb.Errorf("%s: company days\n stored   %v\n from entries %v", when, got.CompanyDays, want.CompanyDays)
	}
	if !maps.Equal(got.Counts, want.Counts) {
		tb.Errorf("%s: entry counts\n stored   %v\n COUNT(*) %v", when, got.Counts, want.Counts)
	}
}

// mustReadsMatchEntries checks the reads served from the rollups — every account's days and
// entry counts (all, and per day), today's earnings, and the company's earnings — against
// figures summed from the entries in Go (R-ACC-5, R-ACC-6, R-ACC-9).
func (h *harness) mustReadsMatchEntries(tb testing.TB, from, to calendar.Date) {
	tb.Helper()
	ctx := context.Background()
	admin := actor(identity.Admin)
	l := h.mustConsistent(tb)
	type day struct{ earned, paid, n int64 }
	perAccount := map[uuid.UUID]map[string]*day{}
	company := map[string]int64{}
	total := map[uuid.UUID]int{}
	for _, e := range l.Entries {
		if perAccount[e.Account] == nil {
			perAccount[e.Account] = map[string]*day{}
		}
		d := perAccount[e.Account][e.Day]
		if d == nil {
			d = &day{}
			perAccount[e.Account][e.Day] = d
		}
		d.n++
		total[e.Account]++
		if e.Type == "PAYOUT" {
			d.paid -= e.Amount
		} else {
			d.earned += e.Amount
			company[e.Day] -= e.Amount
		}
	}
	for id := range l.Balances {
		days, err := h.svc.Days(ctx, admin, id, from, to)
		if err != nil {
			tb.Fatal(err)
		}
		for _, d := range days {
			w := perAccount[id][d.Date.String()]
			if w == nil {
				w = &day{}
			}
			if int64(d.Earned) != w.earned || int64(d.PaidOut) != w.paid {
				tb.Errorf("account %s on %s: earned %d paid %d, entries say %d and %d (R-ACC-9)", id, d.Date, d.Earned, d.PaidOut, w.earned, w.paid)
			}
			p, err := h.svc.Entries(ctx, admin, id, &d.Date, page.Request{First: 1})
			if err != nil {
				tb.Fatal(err)
			}
			if int64(p.TotalCount) != w.n {
				tb.Errorf("account %s on %s: totalCount %d, %d entries", id, d.Date, p.TotalCount, w.n)
			}
		}
		p, err := h.svc.Entries(ctx, admin, id, nil, page.Request{First: 1})
		if err != nil {
			tb.Fatal(err)
		}
		if p.TotalCount != total[id] {
			tb.Errorf("account %s: totalCount %d, %d entries", id, p.TotalCount, total[id])
		}
		a, err := h.svc.Account(ctx, admin, id)
		if err != nil {
			tb.Fatal(err)
		}
		today := calendar.DateOf(h.clock.Now(), h.loc).String()
		if w := perAccount[id][today]; w != nil && int64(a.EarnedToday) != w.earned || w == nil && a.EarnedToday != 0 {
			tb.Errorf("account %s: earned today %d, entries say %v (R-ACC-5)", id, a.EarnedToday, w)
		}
	}
	earnings, err := h.svc.ManagementEarnings(ctx, admin, from, to)
	if err != nil {
		tb.Fatal(err)
	}
	for _, d := range earnings {
		if int64(d.Earnings) != company[d.Date.String()] {
			tb.Errorf("company on %s: earnings %d, entries say %d (R-ACC-6)", d.Date, d.Earnings, company[d.Date.String()])
		}
	}
}

// R-ACC-3, R-ACC-5, R-ACC-6, R-ACC-8, R-ACC-9: random sequences of events — accounts, tasks
// created, assigned, reshuffled and completed, redeliveries, money before its task — applied
// partly event by event and partly in batches (ApplyBatch), some batches delivered twice,
// with closes (manual and scheduled) in between, leave per-day rollups equal to the sums of
// the entries, every account's entry count equal to COUNT(*), every balance equal to the sum
// of its entries; the reads served from the rollups agree with figures summed from the
// entries; and RebuildRollups, from the entries, gives exactly the rows kept on the way.
func TestRollupsEqualTheEntries(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 4} {
		es := withRewards(t, eventStream(t, seed), seed)
		storagetest.Each(t, func(t *testing.T, db *storage.DB) {
			h := MustService(t, db, inLocation(mustLocation(t, "Asia/Tokyo")))
			batched := h.mustBatchReplica(t, db, newLockedRand(seed, 9))
			r := rand.New(rand.NewPCG(seed, 13))
			admin := actor(identity.Admin)
			var last time.Time
			for i, b := range batches(es, seed) {
				for _, e := range b {
					if e.Time.After(last) {
						last = e.Time
					}
				}
				h.clock.Set(last)
				times := 1 + r.IntN(3)/2 // a third of the batches come twice
				for range times {
					if r.IntN(2) == 0 {
						deliverBatch(t, batched, b)
					} else {
						h.deliver(t, b...)
					}
				}
				switch r.IntN(6) {
				case 0:
					h.mustCloseNow(t, h.svc, admin)
				case 1:
					if _, _, err := h.svc.CloseScheduled(context.Background(), calendar.DateOf(last, h.loc).AddDays(-1)); err != nil {
						t.Fatal(err)
					}
				}
				if i%4 == 0 {
					h.mustRollupsMatchEntries(t, fmt.Sprintf("seed %d after batch %d", seed, i))
				}
			}
			h.mustNoDeadLetters(t)
			h.mustCloseNow(t, h.svc, admin)
			h.mustRollupsMatchEntries(t, fmt.Sprintf("seed %d at the end", seed))
			if n := h.mustCount(t, `SELECT COUNT(*) FROM entries WHERE type = 'PAYOUT'`); n == 0 {
				t.Errorf("seed %d: no payouts: the closes were not exercised", seed)
			}
			from := calendar.DateOf(start, h.loc).AddDays(-1)
			h.mustReadsMatchEntries(t, from, calendar.DateOf(last, h.loc).AddDays(1))

			kept := h.mustStoredRollups(t)
			if err := accounting.RebuildRollups(context.Background(), h.db); err != nil {
				t.Fatal(err)
			}
			rebuilt := h.mustStoredRollups(t)
			if !maps.Equal(kept.AccountDays, rebuilt.AccountDays) || !maps.Equal(kept.CompanyDays, rebuilt.CompanyDays) || !maps.Equal(kept.Counts, rebuilt.Counts) {
				t.Errorf("seed %d: rebuilt rollups differ from the kept ones:\n kept %v\n rebuilt %v", seed, kept, rebuilt)
			}
		})
	}
}

// withRewards adds, after a third of the stream's assignments, another completion of the task
// by its assignee an hour later: enough rewards for positive balances, so closes pay out.
func withRewards(tb testing.TB, es []event.Envelope, seed uint64) []event.Envelope {
	tb.Helper()
	r := rand.New(rand.NewPCG(seed, 17))
	var out []event.Envelope
	for _, e := range es {
		out = append(out, e)
		if e.Name != contract.TaskAssigned || r.IntN(3) != 0 {
			continue
		}
		d := decode[contract.TaskAssignedV1](tb, e)
		task, assignee := uuid.MustParse(d.TaskID), uuid.MustParse(d.AssigneeID)
		for range 2 {
			out = append(out, taskCompleted(tb, task, assignee, e.Time.Add(time.Hour)))
		}
	}
	return out
}

// R-ACC-3, R-ACC-9: a database whose entries predate the rollups (empty rollup tables, entry
// counts 0) gets them filled from its entries by the migration, once.
func TestMigrationFillsRollupsOfOlderEntries(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		h.deliver(t, withRewards(t, eventStream(t, 5), 5)...)
		h.mustCloseNow(t, h.svc, actor(identity.Accountant))
		want := h.mustEntryRollups(t)
		for _, q := range []string{`DELETE FROM account_days`, `DELETE FROM company_days`, `UPDATE accounts SET entry_count = 0`} {
			if _, err := h.db.SQL.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.db.Migrate(context.Background(), func(ctx context.Context) error { return accounting.Migrate(ctx, h.db) }); err != nil {
			t.Fatal(err)
		}
		got := h.mustStoredRollups(t)
		if len(want.AccountDays) == 0 || !maps.Equal(got.AccountDays, want.AccountDays) || !maps.Equal(got.CompanyDays, want.CompanyDays) || !maps.Equal(got.Counts, want.Counts) {
			t.Errorf("after the migration:\n stored %v\n from entries %v", got, want)
		}
		h.mustRollupsMatchEntries(t, "after the migration")
	})
}

// schemaState is what a migration could change: on PostgreSQL every relation of the schema with
// its oid (a dropped and re-created index gets a new one) and options; on SQLite the schema's
// version (bumped by every change) and text.
func schemaState(tb testing.TB, db *storage.DB) string {
	tb.Helper()
	q := `SELECT c.relname || ' ' || c.oid::text || ' ' || COALESCE(array_to_string(c.reloptions, ','), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() ORDER BY c.relname`
	if db.Dialect == dialect.SQLite {
		q = `SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master
			UNION ALL SELECT 'version ' || schema_version FROM pragma_schema_version ORDER BY 1`
	}
	rows, err := db.SQL.Query(q)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	mustRowsDone(tb, rows)
	return fmt.Sprint(out)
}

// mustLogDDL records on PostgreSQL every DDL command that completes in the database (an event
// trigger), into a table the caller reads with ddlCommands.
func mustLogDDL(tb testing.TB, db *storage.DB) {
	tb.Helper()
	for _, q := range []string{
		`CREATE TABLE ddl_log (id serial PRIMARY KEY, tag text NOT NULL)`,
		`CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO ddl_log (tag) VALUES (tg_tag); END $$`,
		`CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl()`,
	} {
		if _, err := db.SQL.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	tb.Cleanup(func() { _, _ = db.SQL.Exec(`DROP EVENT TRIGGER IF EXISTS log_ddl`) })
}

func ddlCommands(tb testing.TB, db *storage.DB) []string {
	tb.Helper()
	rows, err := db.SQL.Query(`DELETE FROM ddl_log RETURNING tag`)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	mustRowsDone(tb, rows)
	return out
}

// A second start's migration on a populated database changes nothing: on PostgreSQL it runs no
// DDL at all (an event trigger logs every DDL command) and every table and index keeps its oid
// and options; on SQLite the schema keeps its version. An older database's partial earnings
// index is dropped by the first migration, and nothing is done by the next.
func TestSecondMigrationChangesNothing(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		h.deliver(t, withRewards(t, eventStream(t, 6), 6)...)
		h.mustCloseNow(t, h.svc, actor(identity.Accountant))
		migrate := func() {
			t.Helper()
			// As a start migrates accounting's database: its tables, then the outbox's steps.
			err := db.Migrate(context.Background(), func(ctx context.Context) error {
				if err := accounting.Migrate(ctx, db); err != nil {
					return err
				}
				return outbox.Migrate(ctx, db)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		// The partial index an older schema had.
		if _, err := db.SQL.Exec(`CREATE INDEX entry_earnings_day_type ON entries (day, type) WHERE type IN ('FEE', 'REWARD')`); err != nil {
			t.Fatal(err)
		}
		if db.Dialect == dialect.Postgres {
			mustLogDDL(t, db)
		}
		migrate()
		if db.Dialect == dialect.Postgres {
			if got := ddlCommands(t, db); !slices.Equal(got, []string{"DROP INDEX"}) {
				t.Errorf("migrating an older database: DDL %v, want the old index dropped", got)
			}
		}
		before := schemaState(t, db)
		migrate()
		if after := schemaState(t, db); after != before {
			t.Errorf("a second migration changed the schema:\n before %s\n after  %s", before, after)
		}
		if db.Dialect == dialect.Postgres {
			if got := ddlCommands(t, db); len(got) != 0 {
				t.Errorf("a second migration ran DDL: %v", got)
			}
		}
		h.mustRollupsMatchEntries(t, "after two migrations")
	})
}

// R-ACC-3: RebuildRollups run while batches are being applied on another pool — as a bulk load
// or a migration might meet a running worker — neither misses nor double-counts an entry, and
// neither side fails: the rollups still equal the entries afterwards.
func TestRebuildRollupsWhileApplying(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		h := MustService(t, db)
		handle := h.mustBatchReplica(t, mustReplicaPool(t, db), newLockedRand(7, 8))
		es := withRewards(t, eventStream(t, 8), 8)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, b := range batches(es, 8) {
				deliverBatch(t, handle, b)
			}
		}()
		rebuilds := 0
		for running := true; running; rebuilds++ {
			select {
			case <-done:
				running = false
			default:
			}
			if err := accounting.RebuildRollups(context.Background(), h.db); err != nil {
				t.Fatalf("rebuild %d: %v", rebuilds, err)
			}
		}
		h.mustNoDeadLetters(t)
		h.mustRollupsMatchEntries(t, fmt.Sprintf("after %d rebuilds while applying", rebuilds))
	})
}
