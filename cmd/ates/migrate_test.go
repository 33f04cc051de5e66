package main

import (
	"context"
	"testing"
	"time"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestMigrateDropsOldIndexes: a database made before an index left the schema loses it when
// migrated (Ent's migration keeps indexes it no longer knows); migrating again is a no-op.
// task_status cost every shuffled task an entry; entry_day_type every payout;
// entry_earnings_day_type served the company earnings the rollups now give; outboxevent_sent_at
// indexed every row ever relayed, and could not give the unsent ones in id order.
func TestMigrateDropsOldIndexes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ context, index, create string }{
		{"tasks", "task_status", "CREATE INDEX task_status ON tasks (status)"},
		{"accounting", "entry_day_type", "CREATE INDEX entry_day_type ON entries (day, type)"},
		{"accounting", "entry_earnings_day_type", "CREATE INDEX entry_earnings_day_type ON entries (day, type) WHERE type IN ('FEE', 'REWARD')"},
		{"auth", "outboxevent_sent_at", "CREATE INDEX outboxevent_sent_at ON outbox_events (sent_at)"},
		{"tasks", "outboxevent_sent_at", "CREATE INDEX outboxevent_sent_at ON outbox_events (sent_at)"},
		{"accounting", "outboxevent_sent_at", "CREATE INDEX outboxevent_sent_at ON outbox_events (sent_at)"},
		{"analytics", "outboxevent_sent_at", "CREATE INDEX outboxevent_sent_at ON outbox_events (sent_at)"},
	} {
		t.Run(tc.context+"/"+tc.index, func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *storage.DB) {
				t.Parallel()
				ctx := context.Background()
				if err := migrate(ctx, tc.context, db); err != nil {
					t.Fatal(err)
				}
				if _, err := db.SQL.ExecContext(ctx, tc.create); err != nil {
					t.Fatalf("recreating the old index: %v", err)
				}
				hasIndex := func() bool {
					t.Helper()
					q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = $1"
					if db.Dialect == "postgres" {
						q = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1"
					}
					var n int
					if err := db.SQL.QueryRowContext(ctx, storage.Rebind(db.Dialect, q), tc.index).Scan(&n); err != nil {
						t.Fatal(err)
					}
					return n > 0
				}
				if !hasIndex() {
					t.Fatal("the old index was not created: the test checks nothing")
				}
				for range 2 {
					if err := migrate(ctx, tc.context, db); err != nil {
						t.Fatal(err)
					}
					if hasIndex() {
						t.Fatalf("%s is still there after the migration", tc.index)
					}
				}
			})
		})
	}
}

// TestMigrateMovesEmailJobs: R-ACC-8 — an accounting database from before payments became their
// own email jobs keeps every pending email: the old email_jobs table's attempts, next attempt
// and last error move onto the payments, and the table goes. Migrating again is a no-op.
func TestMigrateMovesEmailJobs(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		t.Parallel()
		ctx := context.Background()
		if err := migrate(ctx, "accounting", db); err != nil {
			t.Fatal(err)
		}
		const payment, account, entry = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002", "01900000-0000-7000-8000-000000000003"
		next := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
		for _, st := range []struct {
			q    string
			args []any
		}{
			{`CREATE TABLE email_jobs (id bigint PRIMARY KEY, payment_id uuid NOT NULL UNIQUE, account_id uuid NOT NULL,
				attempts bigint NOT NULL, next_attempt_at timestamp with time zone NOT NULL, last_error text NOT NULL,
				sent_at timestamp with time zone NULL)`, nil},
			{`INSERT INTO payments (public_id, account_id, amount, day, entry_id, close_id, created_at, email_sent,
				email_attempts, email_next_attempt_at, email_last_error) VALUES ($1, $2, 3500, '2026-12-03', $3, 1, $4, false, 0, NULL, '')`,
				[]any{payment, account, entry, next}},
			{`INSERT INTO email_jobs VALUES (1, $1, $2, 3, $3, 'refused', NULL)`, []any{payment, account, next}},
		} {
			q := storage.Rebind(db.Dialect, st.q)
			if _, err := db.SQL.ExecContext(ctx, q, st.args...); err != nil {
				t.Fatalf("setting up the old database: %v\n%s", err, q)
			}
		}
		for range 2 {
			if err := migrate(ctx, "accounting", db); err != nil {
				t.Fatal(err)
			}
		}
		var attempts int
		var at time.Time
		var lastError string
		if err := db.SQL.QueryRowContext(ctx, storage.Rebind(db.Dialect, `SELECT email_attempts, email_next_attempt_at, email_last_error
			FROM payments WHERE public_id = $1`), payment).Scan(&attempts, &at, &lastError); err != nil {
			t.Fatal(err)
		}
		if attempts != 3 || !at.Equal(next) || lastError != "refused" {
			t.Errorf("payment's email: %d attempts, next %v, last error %q; want the job's 3, %v, refused", attempts, at, lastError, next)
		}
		if _, err := db.SQL.ExecContext(ctx, "SELECT 1 FROM email_jobs"); err == nil {
			t.Error("email_jobs is still there")
		}
	})
}

// TestMigrateLeavesRoomOnPages: on PostgreSQL the accounts table keeps half of every page free,
// so balance updates stay on their row's page (HOT, no new index entries), and the tasks table
// 30 %, so a reassigned task's new version does too.
func TestMigrateLeavesRoomOnPages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ context, table, want string }{
		{"accounting", "accounts", "fillfactor=50"},
		{"tasks", "tasks", "fillfactor=70"},
	} {
		t.Run(tc.table, func(t *testing.T) {
			t.Parallel()
			db := storagetest.MustOpen(t, "postgres")
			ctx := context.Background()
			if err := migrate(ctx, tc.context, db); err != nil {
				t.Fatal(err)
			}
			var opts string
			if err := db.SQL.QueryRowContext(ctx, `SELECT COALESCE(array_to_string(reloptions, ','), '') FROM pg_class
				WHERE oid = $1::regclass`, tc.table).Scan(&opts); err != nil {
				t.Fatal(err)
			}
			if opts != tc.want {
				t.Fatalf("%s has options %q, want %s", tc.table, opts, tc.want)
			}
		})
	}
}
