package analytics

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/event"
)

// ApplyBatch applies consumed events in the consumer's transaction (the inbox's HandleBatch;
// R-AN-4): the same read models as Apply for each in turn, which do not depend on the order
// events come in. It takes its row locks in one order, the same for every batch — the tasks' rows
// by task id, the days' tops by day, ledger entries by entry id, balances by account, day
// balances by account and day, closes by event id — so that the consumer's concurrent workers
// wait for each other's batches but never deadlock. (Applied one after another, two batches
// naming the same account and the same task in opposite orders deadlock on PostgreSQL, and
// each such deadlock stalls both for a second before one of them is given up.) On PostgreSQL
// a batch takes a fixed number of statements whatever its size: one upsert of every task it
// names (its events merged per task), one promote of each day's best, one insert of its
// entries, one upsert of the balances and one of the day balances, each in that order. An
// event that cannot be read fails the batch, whose events the inbox then applies one by one.
func (s *Service) ApplyBatch(ctx context.Context, tx *analyticsdb.Tx, es []event.Envelope) error {
	var tasks, entries, closes []op
	for _, e := range es {
		ops, err := decodeOps(e)
		if err != nil {
			return fmt.Errorf("event %s v%d %s: %w", e.Name, e.Version, e.ID, err)
		}
		for _, o := range ops {
			switch o.kind {
			case opEntry:
				entries = append(entries, o)
			case opDayClosed:
				closes = append(closes, o)
			default:
				tasks = append(tasks, o)
			}
		}
	}
	if err := s.applyTaskOps(ctx, tx, tasks); err != nil {
		return err
	}
	if err := s.applyEntries(ctx, tx, entries); err != nil {
		return err
	}
	slices.SortFunc(closes, func(a, b op) int { return cmp.Compare(a.eventID, b.eventID) })
	for _, o := range closes {
		if err := s.applyDayClosed(ctx, tx, o); err != nil {
			return err
		}
	}
	return nil
}

// applyTaskOps applies the task events of a batch in task id order (a task's own events in
// batch order), then promotes the completed or priced ones in the order of their days.
func (s *Service) applyTaskOps(ctx context.Context, tx *analyticsdb.Tx, ops []op) error {
	slices.SortStableFunc(ops, func(a, b op) int { return compareUUID(a.task, b.task) })
	if s.dialect == dialect.Postgres {
		if len(ops) == 0 {
			return nil
		}
		return s.applyTaskRowsPG(ctx, tx, s.mergeTaskOps(ops))
	}
	var promote []uuid.UUID
	for _, o := range ops {
		if err := s.applyOp(ctx, tx, o); err != nil {
			return err
		}
		if (o.kind == opComplete || o.kind == opPrice) && (len(promote) == 0 || promote[len(promote)-1] != o.task) {
			promote = append(promote, o.task)
		}
	}
	if len(promote) == 0 {
		return nil
	}
	// Only a task both completed and priced competes; its day is known once it is completed.
	args := make([]any, len(promote))
	for i, id := range promote {
		args[i] = id
	}
	rows, err := tx.QueryContext(ctx, s.sql(`SELECT task_id FROM tasks
		WHERE task_id IN (`+placeholders(len(args))+`) AND reward IS NOT NULL AND completed_at IS NOT NULL
		ORDER BY completed_day, task_id`), args...)
	if err != nil {
		return fmt.Errorf("analytics: reading the batch's completed tasks: %w", err)
	}
	var ranked []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("analytics: reading the batch's completed tasks: %w", err)
		}
		ranked = append(ranked, id)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("analytics: reading the batch's completed tasks: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: reading the batch's completed tasks: %w", err)
	}
	for _, id := range ranked {
		if err := s.promote(ctx, tx, id); err != nil {
			return err
		}
	}
	return nil
}

// applyEntries records a batch's ledger entries in entry id order, then moves each account's
// balance, in account order, and each account's day balance, in account and day order, to the
// latest of its entries recorded now (the one with the highest sequence): what moving them
// entry by entry would leave.
func (s *Service) applyEntries(ctx context.Context, tx *analyticsdb.Tx, entries []op) error {
	if s.dialect == dialect.Postgres {
		if len(entries) == 0 {
			return nil
		}
		return s.applyEntriesPG(ctx, tx, entries)
	}
	slices.SortFunc(entries, func(a, b op) int { return compareUUID(a.entryID, b.entryID) })
	var recorded []op
	for i, o := range entries {
		if i > 0 && o.entryID == entries[i-1].entryID {
			continue // one entry delivered twice in the batch
		}
		inserted, err := s.insertEntry(ctx, tx, o)
		if err != nil {
			return err
		}
		if inserted {
			recorded = append(recorded, o)
		}
	}
	// By account, the latest entry (highest sequence) last; then by account and day.
	slices.SortFunc(recorded, func(a, b op) int {
		return cmp.Or(compareUUID(a.account, b.account), cmp.Compare(a.entry.Sequence, b.entry.Sequence))
	})
	for i, o := range recorded {
		if i+1 < len(recorded) && recorded[i+1].account == o.account {
			continue
		}
		if err := s.moveBalance(ctx, tx, o); err != nil {
			return err
		}
	}
	slices.SortStableFunc(recorded, func(a, b op) int {
		return cmp.Or(compareUUID(a.account, b.account), a.day.Compare(b.day))
	})
	for i, o := range recorded {
		if i+1 < len(recorded) && recorded[i+1].account == o.account && recorded[i+1].day == o.day {
			continue
		}
		if err := s.moveDayBalance(ctx, tx, o); err != nil {
			return err
		}
	}
	return nil
}

// compareUUID orders ids as PostgreSQL orders uuid values: byte by byte.
func compareUUID(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// placeholders is "$1, $2, …, $n".
func placeholders(n int) string {
	var b []byte
	for i := range n {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "$%d", i+1)
	}
	return string(b)
}

// taskRow is what a batch says about one task, merged as applying its events one by one
// would: the newest description (the last of equally new ones), the first completion time and
// day, the first assignee named, the first reward.
type taskRow struct {
	id          uuid.UUID
	described   bool
	title       string
	jira        *string
	description string
	describedAt time.Time
	completed   bool
	completedAt time.Time
	assignee    *uuid.UUID
	priced      bool
	reward      int64
}

// mergeTaskOps merges ops sorted by task (a task's own in batch order) into one row per task,
// in task order.
func (s *Service) mergeTaskOps(ops []op) []taskRow {
	var rows []taskRow
	for _, o := range ops {
		if len(rows) == 0 || rows[len(rows)-1].id != o.task {
			rows = append(rows, taskRow{id: o.task})
		}
		r := &rows[len(rows)-1]
		switch o.kind {
		case opDescribe:
			if !r.described || !o.at.Before(r.describedAt) {
				r.described, r.title, r.jira, r.description, r.describedAt = true, o.title, o.jira, o.description, o.at
			}
		case opComplete:
			if !r.completed {
				r.completed, r.completedAt = true, instant(o.at)
			}
			if r.assignee == nil {
				r.assignee = o.assignee
			}
		case opPrice:
			if !r.priced {
				r.priced, r.reward = true, o.reward
			}
		}
	}
	return rows
}

// pgUpsertTasks writes a batch's task rows with one statement, in task order (PostgreSQL). What
// the batch does not say about a task (NULL here) leaves the stored value as it is.
const pgUpsertTasks = `INSERT INTO tasks AS t (task_id, title, jira_id, description, described_at, reward, completed_at, completed_day, assignee_id)
SELECT v.task_id, COALESCE(v.title, ''), v.jira_id, COALESCE(v.description, ''), v.described_at, v.reward, v.completed_at, v.completed_day, v.assignee_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]::timestamptz[], $6::text[]::bigint[], $7::text[]::timestamptz[], $8::text[], $9::text[]::uuid[])
	AS v(task_id, title, jira_id, description, described_at, reward, completed_at, completed_day, assignee_id)
ORDER BY v.task_id
ON CONFLICT (task_id) DO UPDATE SET
	title = CASE WHEN excluded.described_at IS NOT NULL AND (t.described_at IS NULL OR t.described_at <= excluded.described_at) THEN excluded.title ELSE t.title END,
	jira_id = CASE WHEN excluded.described_at IS NOT NULL AND (t.described_at IS NULL OR t.described_at <= excluded.described_at) THEN excluded.jira_id ELSE t.jira_id END,
	description = CASE WHEN excluded.described_at IS NOT NULL AND (t.described_at IS NULL OR t.described_at <= excluded.described_at) THEN excluded.description ELSE t.description END,
	described_at = CASE WHEN excluded.described_at IS NOT NULL AND (t.described_at IS NULL OR t.described_at <= excluded.described_at) THEN excluded.described_at ELSE t.described_at END,
	reward = COALESCE(t.reward, excluded.reward),
	completed_at = COALESCE(t.completed_at, excluded.completed_at),
	completed_day = COALESCE(t.completed_day, excluded.completed_day),
	assignee_id = COALESCE(t.assignee_id, excluded.assignee_id)`

// pgPromote lets the best of a batch's completed and priced tasks of each day compete for the
// day's top (see promote), days in order (PostgreSQL).
const pgPromote = `INSERT INTO daily_tops AS d (day, task_id, reward, completed_at)
SELECT DISTINCT ON (completed_day) completed_day, task_id, reward, completed_at FROM tasks
WHERE task_id = ANY($1::uuid[]) AND reward IS NOT NULL AND completed_at IS NOT NULL
ORDER BY completed_day, reward DESC, completed_at, task_id
ON CONFLICT (day) DO UPDATE SET task_id = excluded.task_id, reward = excluded.reward, completed_at = excluded.completed_at
WHERE excluded.reward > d.reward
	OR (excluded.reward = d.reward AND (excluded.completed_at < d.completed_at
		OR (excluded.completed_at = d.completed_at AND excluded.task_id < d.task_id)))`

// applyTaskRowsPG applies a batch's task events with two statements (PostgreSQL).
func (s *Service) applyTaskRowsPG(ctx context.Context, tx *analyticsdb.Tx, rows []taskRow) error {
	n := len(rows)
	ids, titles, jiras, descriptions := make([]string, n), make([]sql.NullString, n), make([]sql.NullString, n), make([]sql.NullString, n)
	describedAt, rewards, completedAt, days, assignees := make([]sql.NullString, n), make([]sql.NullString, n), make([]sql.NullString, n), make([]sql.NullString, n), make([]sql.NullString, n)
	var promote []string
	for i, r := range rows {
		ids[i] = r.id.String()
		if r.described {
			titles[i], descriptions[i] = valid(r.title), valid(r.description)
			describedAt[i] = valid(pgTime(r.describedAt))
			if r.jira != nil {
				jiras[i] = valid(*r.jira)
			}
		}
		if r.priced {
			rewards[i] = valid(strconv.FormatInt(r.reward, 10))
		}
		if r.completed {
			completedAt[i] = valid(pgTime(r.completedAt))
			days[i] = valid(calendar.DateOf(r.completedAt, s.loc).String())
		}
		if r.assignee != nil {
			assignees[i] = valid(r.assignee.String())
		}
		if r.priced || r.completed {
			promote = append(promote, ids[i])
		}
	}
	_, err := tx.ExecContext(ctx, pgUpsertTasks, pq.StringArray(ids), pq.Array(titles), pq.Array(jiras), pq.Array(descriptions),
		pq.Array(describedAt), pq.Array(rewards), pq.Array(completedAt), pq.Array(days), pq.Array(assignees))
	if err != nil {
		return fmt.Errorf("analytics: storing %d tasks: %w", n, err)
	}
	if len(promote) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, pgPromote, pq.StringArray(promote)); err != nil {
		return fmt.Errorf("analytics: ranking %d tasks: %w", len(promote), err)
	}
	return nil
}

// applyEntriesPG records a batch's entries and moves the balances with three statements
// (PostgreSQL), each in the lock order of applyEntries.
func (s *Service) applyEntriesPG(ctx context.Context, tx *analyticsdb.Tx, entries []op) error {
	n := len(entries)
	ids, accounts, types, days, occurred := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	amounts, after, seqs := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, o := range entries {
		ids[i], accounts[i], types[i], days[i] = o.entryID.String(), o.account.String(), o.entry.Type, o.day.String()
		occurred[i] = pgTime(instant(o.entry.OccurredAt))
		amounts[i], after[i], seqs[i] = o.entry.Amount, o.entry.BalanceAfter, o.entry.Sequence
	}
	rows, err := tx.QueryContext(ctx, `INSERT INTO ledger_entries (entry_id, account_id, type, amount, balance_after, sequence, day, occurred_at)
		SELECT DISTINCT ON (v.entry_id) v.* FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::timestamptz[])
			AS v(entry_id, account_id, type, amount, balance_after, sequence, day, occurred_at)
		ORDER BY v.entry_id
		ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id`,
		pq.StringArray(ids), pq.StringArray(accounts), pq.StringArray(types), pq.Int64Array(amounts), pq.Int64Array(after),
		pq.Int64Array(seqs), pq.StringArray(days), pq.StringArray(occurred))
	if err != nil {
		return fmt.Errorf("analytics: storing %d entries: %w", n, err)
	}
	inserted := make(map[uuid.UUID]bool, n)
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("analytics: storing %d entries: %w", n, err)
		}
		inserted[id] = true
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("analytics: storing %d entries: %w", n, err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: storing %d entries: %w", n, err)
	}
	// The latest recorded entry of each account, and of each account's day: as many upserts
	// entry by entry would leave (each moves only to a higher sequence).
	latest := map[uuid.UUID]op{}
	latestOfDay := map[accountDay]op{}
	for _, o := range entries {
		if !inserted[o.entryID] {
			continue
		}
		if l, ok := latest[o.account]; !ok || o.entry.Sequence > l.entry.Sequence {
			latest[o.account] = o
		}
		k := accountDay{o.account, o.day}
		if l, ok := latestOfDay[k]; !ok || o.entry.Sequence > l.entry.Sequence {
			latestOfDay[k] = o
		}
	}
	if len(latest) == 0 {
		return nil
	}
	var accs, dayAccs, dayDays []string
	var seq, bal, daySeq, dayBal []int64
	for _, o := range latest {
		accs, seq, bal = append(accs, o.account.String()), append(seq, o.entry.Sequence), append(bal, o.entry.BalanceAfter)
	}
	for k, o := range latestOfDay {
		dayAccs, dayDays = append(dayAccs, k.account.String()), append(dayDays, k.day.String())
		daySeq, dayBal = append(daySeq, o.entry.Sequence), append(dayBal, o.entry.BalanceAfter)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO accounts AS a (account_id, sequence, balance)
		SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS v(account_id, sequence, balance) ORDER BY 1
		ON CONFLICT (account_id) DO UPDATE SET sequence = excluded.sequence, balance = excluded.balance
		WHERE excluded.sequence > a.sequence`, pq.StringArray(accs), pq.Int64Array(seq), pq.Int64Array(bal)); err != nil {
		return fmt.Errorf("analytics: updating %d balances: %w", len(accs), err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO account_days AS a (account_id, day, sequence, balance)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS v(account_id, day, sequence, balance) ORDER BY 1, 2
		ON CONFLICT (account_id, day) DO UPDATE SET sequence = excluded.sequence, balance = excluded.balance
		WHERE excluded.sequence > a.sequence`, pq.StringArray(dayAccs), pq.StringArray(dayDays), pq.Int64Array(daySeq), pq.Int64Array(dayBal)); err != nil {
		return fmt.Errorf("analytics: updating %d day balances: %w", len(dayAccs), err)
	}
	return nil
}

// accountDay keys an account's balance at the end of a day.
type accountDay struct {
	account uuid.UUID
	day     calendar.Date
}

func valid(s string) sql.NullString { return sql.NullString{String: s, Valid: true} }

// pgTime is a time as PostgreSQL reads it back exactly (microseconds, UTC).
func pgTime(t time.Time) string { return instant(t).Format("2006-01-02T15:04:05.999999Z07:00") }
