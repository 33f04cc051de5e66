package accounting

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/ids"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/money"
	"github.com/uberpopug/ates/services/outbox"
)

// ApplyBatch applies consumed events, in their order, in the consumer's transaction (the
// inbox's HandleBatch; R-ACC-2, R-ACC-4): the same outcome as Apply for each in turn. On
// PostgreSQL, a batch takes a fixed number of statements whatever its size — prices drawn for
// every new task at once, row locks on the tasks and then on the accounts taken in id order (so
// that concurrent batches, and single events, which also lock a task before an account, never
// deadlock on them), all entries inserted from arrays, all events appended at once. On SQLite
// (one writer: nothing to lock, little to gain) events are applied one after another.
func (s *Service) ApplyBatch(ctx context.Context, tx *accountingdb.Tx, es []event.Envelope) error {
	if s.dialect != dialect.Postgres {
		for _, e := range es {
			if err := s.Apply(ctx, tx, e); err != nil {
				return fmt.Errorf("event %s v%d %s: %w", e.Name, e.Version, e.ID, err)
			}
		}
		return nil
	}
	ops, accounts, err := decodeBatch(es)
	if err != nil {
		return err
	}
	var (
		tasks  map[uuid.UUID]batchTask
		priced []contract.TaskPricedV1
	)
	if len(ops) > 0 {
		if tasks, priced, err = s.priceTasks(ctx, tx, ops); err != nil {
			return err
		}
		if err := s.describeTasks(ctx, tx, ops); err != nil {
			return err
		}
	}
	postings := s.batchPostings(ops, tasks)
	entries, err := s.postAll(ctx, tx, accounts, postings)
	if err != nil {
		return err
	}
	recs := make([]outbox.Record, 0, len(priced)+len(entries))
	for _, p := range priced {
		e, err := event.New(ctx, Producer, contract.TaskPriced, 1, p.PricedAt, p)
		if err != nil {
			return err
		}
		recs = append(recs, outbox.Record{Key: p.TaskID, Envelope: e})
	}
	days := make([]dayEntry, len(entries))
	for i, e := range entries {
		rec, err := balanceChanged(ctx, e.Entry, e.seq)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		days[i] = dayEntry{account: e.AccountID, day: e.Day.String(), typ: e.Type, amount: int64(e.Amount)}
	}
	if err := s.outbox.Append(ctx, tx, recs...); err != nil {
		return err
	}
	return s.rollUp(ctx, tx, days)
}

// taskOp is one task event of a batch: a description (task.created, task.updated) or money
// (task.assigned: a fee, task.completed: a reward).
type taskOp struct {
	eventID string
	task    uuid.UUID

	describes   bool
	title       string
	jira        *string
	description string

	money   EntryType // "" for descriptions
	account uuid.UUID
	at      time.Time
}

// decodeBatch decodes the batch's task events, in order, and its account events, the newest
// version per account (applying them in turn keeps the newest too); other events are ignored,
// as Apply does. A malformed event fails the batch, which the inbox then applies event by
// event, so that only that event is dead-lettered.
func decodeBatch(es []event.Envelope) ([]taskOp, map[uuid.UUID]contract.Account, error) {
	ops := make([]taskOp, 0, len(es))
	accounts := map[uuid.UUID]contract.Account{}
	for _, e := range es {
		op := taskOp{eventID: e.ID}
		var taskID, accountID string
		switch e.Name {
		case contract.AccountCreated, contract.AccountUpdated:
			var d contract.Account
			if err := e.DecodeData(&d); err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			id, err := parseUUID("accountId", d.AccountID)
			if err != nil {
				return nil, nil, err
			}
			if _, err := identity.ParseRole(d.Role); err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			if prev, ok := accounts[id]; !ok || prev.Version < d.Version {
				accounts[id] = d
			}
			continue
		case contract.TaskCreated:
			d, err := contract.DecodeTaskCreated(e)
			if err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			taskID, op.describes, op.title, op.jira, op.description = d.TaskID, true, d.Title, d.JiraID, d.Description
		case contract.TaskUpdated:
			var d contract.TaskUpdatedV1
			if err := e.DecodeData(&d); err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			taskID, op.describes, op.title, op.jira, op.description = d.TaskID, true, d.Title, d.JiraID, d.Description
		case contract.TaskAssigned:
			var d contract.TaskAssignedV1
			if err := e.DecodeData(&d); err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			taskID, accountID, op.money, op.at = d.TaskID, d.AssigneeID, Fee, d.AssignedAt
		case contract.TaskCompleted:
			var d contract.TaskCompletedV1
			if err := e.DecodeData(&d); err != nil {
				return nil, nil, inbox.Permanent(err)
			}
			taskID, accountID, op.money, op.at = d.TaskID, d.AssigneeID, Reward, d.CompletedAt
		default:
			continue
		}
		var err error
		if op.task, err = parseUUID("taskId", taskID); err != nil {
			return nil, nil, err
		}
		if op.money != "" {
			if op.account, err = parseUUID("assigneeId", accountID); err != nil {
				return nil, nil, err
			}
			// As in applyTaskMoney: one instant, in microseconds, on every database (R-ACC-7).
			op.at = op.at.UTC().Truncate(time.Microsecond)
		}
		ops = append(ops, op)
	}
	return ops, accounts, nil
}

// batchTask is what a batch knows of a task: its price and its description before the batch.
type batchTask struct {
	Price
	title     string
	jira      sql.NullString
	described bool
}

// pgPriceTasks prices the tasks not priced yet, inserting in id order (the unique index is
// locked in that order), and returns the newly priced ones.
const pgPriceTasks = `INSERT INTO tasks (public_id, fee, reward, priced_at, title, description, described)
SELECT t.id, t.fee, t.reward, $4, '', '', false
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS t(id, fee, reward)
ORDER BY t.id
ON CONFLICT (public_id) DO NOTHING
RETURNING public_id, fee, reward`

// priceTasks draws a price for every task of the batch; the database keeps it for the tasks it
// had not priced yet (R-ACC-1). It returns every task's price and description as stored before
// the batch's descriptions, and the task.priced events of the new prices.
func (s *Service) priceTasks(ctx context.Context, tx *accountingdb.Tx, ops []taskOp) (map[uuid.UUID]batchTask, []contract.TaskPricedV1, error) {
	taskIDs := make([]uuid.UUID, 0, len(ops))
	for _, op := range ops {
		taskIDs = append(taskIDs, op.task)
	}
	slices.SortFunc(taskIDs, compareUUIDs)
	taskIDs = slices.Compact(taskIDs)
	idText := make([]string, len(taskIDs))
	fees := make([]int64, len(taskIDs))
	rewards := make([]int64, len(taskIDs))
	for i, id := range taskIDs {
		p := drawPrice(s.rand)
		idText[i], fees[i], rewards[i] = id.String(), int64(p.Fee), int64(p.Reward)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	rows, err := tx.QueryContext(ctx, pgPriceTasks, pq.Array(idText), pq.Array(fees), pq.Array(rewards), now)
	if err != nil {
		return nil, nil, fmt.Errorf("accounting: pricing %d tasks: %w", len(taskIDs), err)
	}
	var priced []contract.TaskPricedV1
	for rows.Next() {
		var p contract.TaskPricedV1
		if err := rows.Scan(&p.TaskID, &p.Fee, &p.Reward); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("accounting: pricing tasks: %w", err)
		}
		p.PricedAt = now
		priced = append(priced, p)
	}
	if err := errorsOf(rows); err != nil {
		return nil, nil, fmt.Errorf("accounting: pricing tasks: %w", err)
	}
	slices.SortFunc(priced, func(a, b contract.TaskPricedV1) int { return strings.Compare(a.TaskID, b.TaskID) })

	rows, err = tx.QueryContext(ctx, `SELECT public_id, fee, reward, title, jira_id, described FROM tasks WHERE public_id = ANY($1::uuid[])`, pq.Array(idText))
	if err != nil {
		return nil, nil, fmt.Errorf("accounting: reading %d tasks: %w", len(taskIDs), err)
	}
	tasks := make(map[uuid.UUID]batchTask, len(taskIDs))
	for rows.Next() {
		var (
			id          uuid.UUID
			fee, reward int64
			t           batchTask
		)
		if err := rows.Scan(&id, &fee, &reward, &t.title, &t.jira, &t.described); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("accounting: reading tasks: %w", err)
		}
		t.Price = Price{Fee: money.Cents(fee), Reward: money.Cents(reward)}
		tasks[id] = t
	}
	if err := errorsOf(rows); err != nil {
		return nil, nil, fmt.Errorf("accounting: reading tasks: %w", err)
	}
	if len(tasks) != len(taskIDs) {
		return nil, nil, fmt.Errorf("accounting: %d of %d tasks vanished", len(taskIDs)-len(tasks), len(taskIDs))
	}
	return tasks, priced, nil
}

// compareUUIDs orders ids as PostgreSQL orders uuid values: the lock order of a batch.
func compareUUIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// errorsOf closes rows and returns what went wrong while reading them.
func errorsOf(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	return rows.Close()
}

// pgDescribeTasks stores the tasks' latest descriptions of the batch.
//
// A task whose stored description is the same (a completion's task.updated repeats it) is left
// alone: rewriting it would lock its row for the rest of the batch, and another batch pricing
// the task (INSERT … ON CONFLICT) would wait for this one to commit.
const pgDescribeTasks = `UPDATE tasks SET title = d.title, jira_id = d.jira, description = d.description, described = true
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS d(id, title, jira, description)
WHERE tasks.public_id = d.id
	AND (NOT tasks.described OR (tasks.title, tasks.jira_id, tasks.description) IS DISTINCT FROM (d.title, d.jira, d.description))`

// describeTasks stores, per task, the last description of the batch (as applying them in turn
// would leave it).
func (s *Service) describeTasks(ctx context.Context, tx *accountingdb.Tx, ops []taskOp) error {
	last := map[uuid.UUID]int{}
	for i, op := range ops {
		if op.describes {
			last[op.task] = i
		}
	}
	if len(last) == 0 {
		return nil
	}
	order := make([]int, 0, len(last))
	for _, i := range last {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return compareUUIDs(ops[a].task, ops[b].task) })
	ids := make([]string, len(order))
	titles := make([]string, len(order))
	jiras := make([]sql.NullString, len(order))
	descriptions := make([]string, len(order))
	for k, i := range order {
		op := ops[i]
		ids[k], titles[k], descriptions[k] = op.task.String(), op.title, op.description
		if op.jira != nil {
			jiras[k] = sql.NullString{String: *op.jira, Valid: true}
		}
	}
	if _, err := tx.ExecContext(ctx, pgDescribeTasks, pq.Array(ids), pq.Array(titles), pq.Array(jiras), pq.Array(descriptions)); err != nil {
		return fmt.Errorf("accounting: describing %d tasks: %w", len(ids), err)
	}
	return nil
}

// batchPostings turns the batch's money events into postings, describing each task as it was
// when its event came in the batch's order (as Apply, event after event, would).
func (s *Service) batchPostings(ops []taskOp, tasks map[uuid.UUID]batchTask) []posting {
	var out []posting
	for _, op := range ops {
		t := tasks[op.task]
		if op.describes {
			t.described, t.title = true, op.title
			t.jira = sql.NullString{}
			if op.jira != nil {
				t.jira = sql.NullString{String: *op.jira, Valid: true}
			}
			tasks[op.task] = t
			continue
		}
		amount, what := -t.Fee, "Fee for task "
		if op.money == Reward {
			amount, what = t.Reward, "Reward for task "
		}
		task := op.task
		out = append(out, posting{
			Account: op.account, Type: op.money, Amount: amount, Task: &task,
			Description: what + taskLabel(op.task, t.described, t.title, t.jira),
			At:          op.at, Day: calendar.DateOf(op.at, s.loc), SourceEventID: op.eventID,
		})
	}
	return out
}

// postedEntry is an entry a batch stored, with its ledger sequence.
type postedEntry struct {
	Entry
	seq int64
}

// pgLockAccounts opens the billing accounts not heard of yet, brings the replicas of the
// batch's account events up to date (by version, as applyAccount does), moves every balance by
// the batch's postings to it ($9, 0 for an account only described) and its entry count by their
// number ($10), and locks every account
// of the batch, in id order, returning its balance after the batch. Every row conflicts into
// the DO UPDATE, which locks it: one pass, one order, and no second statement for the
// balances while the locks are held.
const pgLockAccounts = `INSERT INTO accounts AS a (public_id, username, email, full_name, role, active, version, balance, entry_count, created_at)
SELECT u.id, u.username, u.email, u.full_name, u.role, u.active, u.version, u.delta, u.n, $8
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::bigint[], $9::bigint[], $10::bigint[])
	AS u(id, username, email, full_name, role, active, version, delta, n)
ORDER BY u.id
ON CONFLICT (public_id) DO UPDATE SET
	username = CASE WHEN a.version < excluded.version THEN excluded.username ELSE a.username END,
	email = CASE WHEN a.version < excluded.version THEN excluded.email ELSE a.email END,
	full_name = CASE WHEN a.version < excluded.version THEN excluded.full_name ELSE a.full_name END,
	role = CASE WHEN a.version < excluded.version THEN excluded.role ELSE a.role END,
	active = CASE WHEN a.version < excluded.version THEN excluded.active ELSE a.active END,
	version = GREATEST(a.version, excluded.version),
	balance = a.balance + excluded.balance,
	entry_count = a.entry_count + excluded.entry_count
RETURNING public_id, balance`

// pgInsertEntries stores the batch's entries in their order, so that one account's entries get
// growing ids (the ledger sequence).
const pgInsertEntries = `INSERT INTO entries (public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id)
SELECT e.public_id, e.account_id, e.type, e.amount, e.balance_after, e.task_id, e.occurred_at, e.day, e.source_event_id
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::uuid[], $7::timestamptz[], $8::text[], $9::text[])
	WITH ORDINALITY AS e(public_id, account_id, type, amount, balance_after, task_id, occurred_at, day, source_event_id, n)
ORDER BY e.n
RETURNING public_id, id`

// postAll updates the batch's account replicas and applies the postings in order: every
// balance moves by its entries and each entry records the balance after it, all in this
// transaction (R-ACC-3).
func (s *Service) postAll(ctx context.Context, tx *accountingdb.Tx, replicas map[uuid.UUID]contract.Account, ps []posting) ([]postedEntry, error) {
	accountIDs := make([]uuid.UUID, 0, len(replicas)+len(ps))
	for id := range replicas {
		accountIDs = append(accountIDs, id)
	}
	for _, p := range ps {
		accountIDs = append(accountIDs, p.Account)
	}
	if len(accountIDs) == 0 {
		return nil, nil
	}
	slices.SortFunc(accountIDs, compareUUIDs)
	accountIDs = slices.Compact(accountIDs)
	deltas := make(map[uuid.UUID]int64, len(accountIDs))
	counts := make(map[uuid.UUID]int64, len(accountIDs))
	for _, p := range ps {
		deltas[p.Account] += int64(p.Amount)
		counts[p.Account]++
	}
	var c struct {
		id, username, email, fullName, role []string
		active                              []bool
		version, delta, count               []int64
	}
	for _, id := range accountIDs {
		d, ok := replicas[id]
		if !ok {
			d = contract.Account{Active: true} // opened on first mention, described later
		}
		c.id = append(c.id, id.String())
		c.username, c.email, c.fullName, c.role = append(c.username, d.Username), append(c.email, d.Email), append(c.fullName, d.FullName), append(c.role, d.Role)
		c.active, c.version, c.delta = append(c.active, d.Active), append(c.version, d.Version), append(c.delta, deltas[id])
		c.count = append(c.count, counts[id])
	}
	rows, err := tx.QueryContext(ctx, pgLockAccounts, pq.Array(c.id), pq.Array(c.username), pq.Array(c.email),
		pq.Array(c.fullName), pq.Array(c.role), pq.Array(c.active), pq.Array(c.version), s.now().UTC(), pq.Array(c.delta), pq.Array(c.count))
	if err != nil {
		return nil, fmt.Errorf("accounting: locking %d accounts: %w", len(accountIDs), err)
	}
	balances := make(map[uuid.UUID]int64, len(accountIDs)) // before the batch
	final := make(map[uuid.UUID]int64, len(accountIDs))
	for rows.Next() {
		var (
			id uuid.UUID
			b  int64
		)
		if err := rows.Scan(&id, &b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("accounting: locking accounts: %w", err)
		}
		final[id], balances[id] = b, b-deltas[id]
	}
	if err := errorsOf(rows); err != nil {
		return nil, fmt.Errorf("accounting: locking accounts: %w", err)
	}
	if len(balances) != len(accountIDs) {
		return nil, fmt.Errorf("accounting: %d of %d accounts not locked", len(accountIDs)-len(balances), len(accountIDs))
	}
	if len(ps) == 0 {
		return nil, nil
	}

	entries := make([]postedEntry, len(ps))
	cols := struct {
		id, account, typ, day, source, at []string
		task                              []sql.NullString
		amount, after                     []int64
	}{}
	for i, p := range ps {
		balances[p.Account] += int64(p.Amount)
		e := Entry{
			ID: ids.New(), AccountID: p.Account, Type: p.Type, Amount: p.Amount, BalanceAfter: money.Cents(balances[p.Account]),
			TaskID: p.Task, Description: p.Description, OccurredAt: p.At.UTC(), Day: p.Day,
		}
		entries[i] = postedEntry{Entry: e}
		cols.id = append(cols.id, e.ID.String())
		cols.account = append(cols.account, e.AccountID.String())
		cols.typ = append(cols.typ, string(e.Type))
		cols.amount = append(cols.amount, int64(e.Amount))
		cols.after = append(cols.after, int64(e.BalanceAfter))
		var task sql.NullString
		if e.TaskID != nil {
			task = sql.NullString{String: e.TaskID.String(), Valid: true}
		}
		cols.task = append(cols.task, task)
		cols.at = append(cols.at, e.OccurredAt.Format(time.RFC3339Nano))
		cols.day = append(cols.day, e.Day.String())
		cols.source = append(cols.source, p.SourceEventID)
	}
	for id, b := range final { // the entries lead where the database moved the balances
		if balances[id] != b {
			return nil, fmt.Errorf("accounting: account %s: entries lead to balance %d, stored %d", id, balances[id], b)
		}
	}
	rows, err = tx.QueryContext(ctx, pgInsertEntries, pq.Array(cols.id), pq.Array(cols.account), pq.Array(cols.typ),
		pq.Array(cols.amount), pq.Array(cols.after), pq.Array(cols.task), pq.Array(cols.at), pq.Array(cols.day), pq.Array(cols.source))
	if err != nil {
		return nil, fmt.Errorf("accounting: storing %d entries: %w", len(ps), err)
	}
	seqs := make(map[uuid.UUID]int64, len(ps))
	for rows.Next() {
		var (
			id  uuid.UUID
			seq int64
		)
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return nil, fmt.Errorf("accounting: storing entries: %w", err)
		}
		seqs[id] = seq
	}
	if err := errorsOf(rows); err != nil {
		return nil, fmt.Errorf("accounting: storing entries: %w", err)
	}
	for i := range entries {
		seq, ok := seqs[entries[i].ID]
		if !ok {
			return nil, fmt.Errorf("accounting: entry %s not stored", entries[i].ID)
		}
		entries[i].seq = seq
	}
	return entries, nil
}
