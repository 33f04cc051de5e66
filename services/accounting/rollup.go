package accounting

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/storage"
)

// execer is a transaction that runs statements: an Ent transaction or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// dayEntry is a stored entry as the rollups see it: whose, which day, which type, how much.
type dayEntry struct {
	account uuid.UUID
	day     string
	typ     EntryType
	amount  int64
}

// accountDay is one account_days row's change: the sums and count of entries to add.
type accountDay struct {
	account                         uuid.UUID
	day                             string
	fees, rewards, payouts, entries int64
}

// companyDay is one company_days row's change.
type companyDay struct {
	day                    string
	fees, rewards, entries int64
}

// rollUp adds stored entries to the per-account and company per-day rollups, in the entries'
// transaction, so the rollups always equal the sums of the entries (R-ACC-3). Rows are changed
// in key order — account days by account and day, company days by day — and after the
// accounts they belong to, the order every ledger transaction takes its locks in; the company
// days come last, so their rows, which every transaction of a day shares, are held shortest.
func (s *Service) rollUp(ctx context.Context, tx execer, es []dayEntry) error {
	acc, com := sumDays(es)
	if len(acc) > 0 {
		if err := s.upsertAccountDays(ctx, tx, acc); err != nil {
			return fmt.Errorf("accounting: adding to the account days: %w", err)
		}
	}
	if len(com) > 0 {
		if err := s.upsertCompanyDays(ctx, tx, com); err != nil {
			return fmt.Errorf("accounting: adding to the company days: %w", err)
		}
	}
	return nil
}

// sumDays sums entries per account and day, and the FEE and REWARD ones per day, in key order.
func sumDays(es []dayEntry) ([]accountDay, []companyDay) {
	type key struct {
		account uuid.UUID
		day     string
	}
	byAccount := map[key]*accountDay{}
	byDay := map[string]*companyDay{}
	for _, e := range es {
		a := byAccount[key{e.account, e.day}]
		if a == nil {
			a = &accountDay{account: e.account, day: e.day}
			byAccount[key{e.account, e.day}] = a
		}
		a.entries++
		switch e.typ {
		case Fee:
			a.fees += e.amount
		case Reward:
			a.rewards += e.amount
		case Payout:
			a.payouts += e.amount
		}
		if e.typ == Payout {
			continue
		}
		c := byDay[e.day]
		if c == nil {
			c = &companyDay{day: e.day}
			byDay[e.day] = c
		}
		c.entries++
		if e.typ == Fee {
			c.fees += e.amount
		} else {
			c.rewards += e.amount
		}
	}
	acc := make([]accountDay, 0, len(byAccount))
	for _, a := range byAccount {
		acc = append(acc, *a)
	}
	slices.SortFunc(acc, func(a, b accountDay) int {
		return cmp.Or(compareUUIDs(a.account, b.account), strings.Compare(a.day, b.day))
	})
	com := make([]companyDay, 0, len(byDay))
	for _, c := range byDay {
		com = append(com, *c)
	}
	slices.SortFunc(com, func(a, b companyDay) int { return strings.Compare(a.day, b.day) })
	return acc, com
}

const accountDaysConflict = ` ON CONFLICT (account_id, day) DO UPDATE SET fees = account_days.fees + excluded.fees,
	rewards = account_days.rewards + excluded.rewards, payouts = account_days.payouts + excluded.payouts,
	entries = account_days.entries + excluded.entries`

const companyDaysConflict = ` ON CONFLICT (day) DO UPDATE SET fees = company_days.fees + excluded.fees,
	rewards = company_days.rewards + excluded.rewards, entries = company_days.entries + excluded.entries`

// pgAccountDays adds to the account days from one array per column, in key order.
const pgAccountDays = `INSERT INTO account_days (account_id, day, fees, rewards, payouts, entries)
SELECT d.account_id, d.day, d.fees, d.rewards, d.payouts, d.entries
FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
	AS d(account_id, day, fees, rewards, payouts, entries)
ORDER BY d.account_id, d.day` + accountDaysConflict

// pgCompanyDays adds to the company days from one array per column, in day order.
const pgCompanyDays = `INSERT INTO company_days (day, fees, rewards, entries)
SELECT d.day, d.fees, d.rewards, d.entries
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS d(day, fees, rewards, entries)
ORDER BY d.day` + companyDaysConflict

func (s *Service) upsertAccountDays(ctx context.Context, tx execer, ds []accountDay) error {
	if s.dialect == dialect.Postgres {
		var (
			ids, days                       []string
			fees, rewards, payouts, entries []int64
		)
		for _, d := range ds {
			ids, days = append(ids, d.account.String()), append(days, d.day)
			fees, rewards = append(fees, d.fees), append(rewards, d.rewards)
			payouts, entries = append(payouts, d.payouts), append(entries, d.entries)
		}
		_, err := tx.ExecContext(ctx, pgAccountDays, pq.StringArray(ids), pq.StringArray(days),
			pq.Int64Array(fees), pq.Int64Array(rewards), pq.Int64Array(payouts), pq.Int64Array(entries))
		return err
	}
	args := make([]any, 0, 6*len(ds))
	for _, d := range ds {
		args = append(args, d.account.String(), d.day, d.fees, d.rewards, d.payouts, d.entries)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO account_days (account_id, day, fees, rewards, payouts, entries) VALUES `+
		sqliteValues(len(ds), "(?, ?, ?, ?, ?, ?)")+accountDaysConflict, args...)
	return err
}

func (s *Service) upsertCompanyDays(ctx context.Context, tx execer, ds []companyDay) error {
	if s.dialect == dialect.Postgres {
		var (
			days                   []string
			fees, rewards, entries []int64
		)
		for _, d := range ds {
			days, fees = append(days, d.day), append(fees, d.fees)
			rewards, entries = append(rewards, d.rewards), append(entries, d.entries)
		}
		_, err := tx.ExecContext(ctx, pgCompanyDays, pq.StringArray(days), pq.Int64Array(fees),
			pq.Int64Array(rewards), pq.Int64Array(entries))
		return err
	}
	args := make([]any, 0, 4*len(ds))
	for _, d := range ds {
		args = append(args, d.day, d.fees, d.rewards, d.entries)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO company_days (day, fees, rewards, entries) VALUES `+
		sqliteValues(len(ds), "(?, ?, ?, ?)")+companyDaysConflict, args...)
	return err
}

// rebuildStatements recompute the rollups and the accounts' entry counts from the entries.
var rebuildStatements = []string{
	`DELETE FROM account_days`,
	`DELETE FROM company_days`,
	`INSERT INTO account_days (account_id, day, fees, rewards, payouts, entries)
	SELECT account_id, day,
		COALESCE(SUM(CASE WHEN type = 'FEE' THEN amount ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN type = 'REWARD' THEN amount ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN type = 'PAYOUT' THEN amount ELSE 0 END), 0),
		COUNT(*)
	FROM entries GROUP BY account_id, day ORDER BY account_id, day`,
	`INSERT INTO company_days (day, fees, rewards, entries)
	SELECT day,
		COALESCE(SUM(CASE WHEN type = 'FEE' THEN amount ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN type = 'REWARD' THEN amount ELSE 0 END), 0),
		COUNT(*)
	FROM entries WHERE type IN ('FEE', 'REWARD') GROUP BY day ORDER BY day`,
	`UPDATE accounts SET entry_count = c.n
	FROM (SELECT account_id, COUNT(*) AS n FROM entries GROUP BY account_id) AS c
	WHERE accounts.public_id = c.account_id AND accounts.entry_count <> c.n`,
	`UPDATE accounts SET entry_count = 0
	WHERE entry_count <> 0 AND NOT EXISTS (SELECT 1 FROM entries WHERE entries.account_id = accounts.public_id)`,
}

// RebuildRollups recomputes, in one transaction, the per-account and company per-day rollups
// and every account's entry count from the entries. The migration runs it once for a database
// whose entries predate the rollups; a bulk load that writes entries directly runs it after.
// On PostgreSQL it holds off ledger writes while it runs (the accounts and entries tables
// locked in SHARE mode, in the order ledger transactions take them), so no entry is counted
// twice or missed.
func RebuildRollups(ctx context.Context, db *storage.DB) error {
	begin := func(ctx context.Context) (*sql.Tx, error) { return db.SQL.BeginTx(ctx, nil) }
	return storage.InTx(ctx, begin, func(tx *sql.Tx) error {
		if db.Dialect == dialect.Postgres {
			if _, err := tx.ExecContext(ctx, `LOCK TABLE accounts, entries IN SHARE MODE`); err != nil {
				return fmt.Errorf("accounting: holding off new entries: %w", err)
			}
		}
		for _, q := range rebuildStatements {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("accounting: rebuilding the rollups: %w", err)
			}
		}
		return nil
	})
}

// rollupsMissing reports whether the database has entries but no rollups: they were made
// before the rollups existed (or their first fill did not commit).
func rollupsMissing(ctx context.Context, db *sql.DB) (bool, error) {
	var entries, days int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM entries LIMIT 1) AS e`).Scan(&entries); err != nil {
		return false, fmt.Errorf("accounting: looking for entries: %w", err)
	}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM account_days LIMIT 1) AS d`).Scan(&days); err != nil {
		return false, fmt.Errorf("accounting: looking for rollups: %w", err)
	}
	return entries > 0 && days == 0, nil
}
