package accounting_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// readBenchPopugs is how many billing accounts the read benchmark's entries belong to.
const readBenchPopugs = 50

// readBenchEntries is the read benchmark's ledger size; ATES_BENCH_ENTRIES sets another.
func readBenchEntries(tb testing.TB) int {
	if s := os.Getenv("ATES_BENCH_ENTRIES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			tb.Fatalf("ATES_BENCH_ENTRIES: %v", err)
		}
		return n
	}
	return 100_000
}

// mustBenchLedger writes n entries straight into the tables — readBenchPopugs accounts, a FEE,
// a REWARD and a PAYOUT in turn, spread evenly over 365 business days ending on the clock's
// day, balances chained — then fills the rollups with RebuildRollups, as a bulk load does.
func mustBenchLedger(tb testing.TB, h *harness, n int) []uuid.UUID {
	tb.Helper()
	ctx := context.Background()
	popugs := make([]uuid.UUID, readBenchPopugs)
	for i := range popugs {
		popugs[i] = uuid.New()
		if _, err := h.db.SQL.Exec(h.q(`INSERT INTO accounts (public_id, username, email, full_name, role, active, version, balance, entry_count, created_at)
			VALUES ($1, $2, '', '', 'WORKER', true, 1, 0, 0, $3)`), popugs[i].String(), fmt.Sprintf("popug_%d", i), start); err != nil {
			tb.Fatal(err)
		}
	}
	first := calendar.DateOf(start, h.loc).AddDays(-364)
	balances := make([]int64, readBenchPopugs)
	const chunk = 2000
	for from := 0; from < n; from += chunk {
		var cols struct {
			id, account, typ, day, source, at []string
			amount, after                     []int64
		}
		for i := from; i < min(from+chunk, n); i++ {
			a := i % readBenchPopugs
			typ, amount := "FEE", -int64(1000+i%11*100)
			switch i % 3 {
			case 1:
				typ, amount = "REWARD", int64(2000+i%21*100)
			case 2:
				typ, amount = "PAYOUT", -int64(500)
			}
			balances[a] += amount
			day := first.AddDays(i * 365 / n)
			cols.id = append(cols.id, uuid.NewString())
			cols.account = append(cols.account, popugs[a].String())
			cols.typ, cols.amount, cols.after = append(cols.typ, typ), append(cols.amount, amount), append(cols.after, balances[a])
			cols.day = append(cols.day, day.String())
			cols.at = append(cols.at, day.Start(h.loc).Add(time.Hour).UTC().Format(time.RFC3339Nano))
			cols.source = append(cols.source, "bench:"+strconv.Itoa(i))
		}
		var err error
		if h.db.Dialect == dialect.Postgres {
			_, err = h.db.SQL.ExecContext(ctx, `INSERT INTO entries (public_id, account_id, type, amount, balance_after, occurred_at, day, source_event_id)
				SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::text[], $8::text[])`,
				pq.Array(cols.id), pq.Array(cols.account), pq.Array(cols.typ), pq.Array(cols.amount), pq.Array(cols.after),
				pq.Array(cols.at), pq.Array(cols.day), pq.Array(cols.source))
		} else {
			args := make([]any, 0, 8*len(cols.id))
			for k := range cols.id {
				args = append(args, cols.id[k], cols.account[k], cols.typ[k], cols.amount[k], cols.after[k], cols.at[k], cols.day[k], cols.source[k])
			}
			row := "(?, ?, ?, ?, ?, ?, ?, ?)"
			vals := row
			for range len(cols.id) - 1 {
				vals += ", " + row
			}
			_, err = h.db.SQL.ExecContext(ctx, `INSERT INTO entries (public_id, account_id, type, amount, balance_after, occurred_at, day, source_event_id) VALUES `+vals, args...)
		}
		if err != nil {
			tb.Fatalf("loading entries: %v", err)
		}
	}
	for i, id := range popugs {
		if _, err := h.db.SQL.Exec(h.q(`UPDATE accounts SET balance = $1 WHERE public_id = $2`), balances[i], id.String()); err != nil {
			tb.Fatal(err)
		}
	}
	t0 := time.Now()
	if err := accounting.RebuildRollups(ctx, h.db); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("%s: %d entries; RebuildRollups %v", h.db.Dialect, n, time.Since(t0).Round(time.Millisecond))
	if _, err := h.db.SQL.Exec(`ANALYZE`); err != nil {
		tb.Fatal(err)
	}
	return popugs
}

// BenchmarkReads times the accounting reads whose cost grew with the ledger before the rollups
// — an account's entry count (entries{totalCount}), its 365 days, the company's earnings over
// 365 days — with 50 popugs' entries over a year (100 000 unless ATES_BENCH_ENTRIES says),
// on SQLite and PostgreSQL; p50 and p95 per read. The "entries-" cases run the queries the
// reads ran before the rollups (with the partial earnings index they had), on the same data.
func BenchmarkReads(b *testing.B) {
	for _, d := range storagetest.Dialects {
		b.Run(d, func(b *testing.B) {
			ctx := context.Background()
			h := MustService(b, storagetest.MustOpen(b, d))
			h.clock.Set(start)
			popugs := mustBenchLedger(b, h, readBenchEntries(b))
			admin := actor(identity.Admin)
			to := calendar.DateOf(start, h.loc)
			from := to.AddDays(-364)
			reads := []struct {
				name string
				read func(id uuid.UUID) error
			}{
				{"totalCount", func(id uuid.UUID) error {
					_, err := h.svc.Entries(ctx, admin, id, nil, page.Request{First: 20})
					return err
				}},
				{"days365", func(id uuid.UUID) error { _, err := h.svc.Days(ctx, admin, id, from, to); return err }},
				{"managementEarnings365", func(uuid.UUID) error {
					_, err := h.svc.ManagementEarnings(ctx, admin, from, to)
					return err
				}},
				{"entries-count", func(id uuid.UUID) error {
					return h.db.SQL.QueryRow(h.q(`SELECT COUNT("entries"."id") FROM "entries" WHERE "entries"."account_id" = $1`), id.String()).Scan(new(int))
				}},
				{"entries-days365", func(id uuid.UUID) error {
					rows, err := h.db.SQL.Query(h.q(`SELECT day,
						COALESCE(SUM(CASE WHEN type IN ('FEE', 'REWARD') THEN amount ELSE 0 END), 0),
						COALESCE(SUM(CASE WHEN type = 'PAYOUT' THEN -amount ELSE 0 END), 0)
						FROM entries WHERE account_id = $1 AND day >= $2 AND day <= $3 GROUP BY day`), id.String(), from.String(), to.String())
					if err != nil {
						return err
					}
					for rows.Next() {
					}
					return rows.Close()
				}},
				{"entries-earnings365", func(uuid.UUID) error {
					rows, err := h.db.SQL.Query(h.q(`SELECT day, COALESCE(SUM(amount), 0) FROM entries
						WHERE day >= $1 AND day <= $2 AND type IN ('FEE', 'REWARD') GROUP BY day`), from.String(), to.String())
					if err != nil {
						return err
					}
					for rows.Next() {
					}
					return rows.Close()
				}},
			}
			oldIndex := false
			for _, r := range reads {
				if len(r.name) > 8 && r.name[:8] == "entries-" && !oldIndex {
					oldIndex = true
					if _, err := h.db.SQL.Exec(`CREATE INDEX entry_earnings_day_type ON entries (day, type) WHERE type IN ('FEE', 'REWARD')`); err != nil {
						b.Fatal(err)
					}
					if _, err := h.db.SQL.Exec(`ANALYZE`); err != nil {
						b.Fatal(err)
					}
				}
				b.Run(r.name, func(b *testing.B) {
					var took []time.Duration
					i := 0
					for b.Loop() {
						t0 := time.Now()
						if err := r.read(popugs[i%len(popugs)]); err != nil {
							b.Fatal(err)
						}
						took = append(took, time.Since(t0))
						i++
					}
					slices.Sort(took)
					b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
				})
			}
		})
	}
}
