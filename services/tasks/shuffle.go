package tasks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/account"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/storage"
)

// shuffleLock is the PostgreSQL advisory lock that serializes shuffles.
const shuffleLock = 0x7a5f_5348 // "zS H": any constant unique within the tasks database

// Shuffle reassigns every OPEN task to an assignable popug drawn uniformly and independently
// per task; ADMIN or MANAGER only (R-TASK-4). Every reassignment is an assignment with its
// task.assigned event, also when the same popug is drawn again. It returns how many tasks
// were reassigned.
//
// One shuffle is one transaction: it reassigns all open tasks or none. It walks the open tasks
// in id order in batches (one UPDATE and one outbox INSERT — COPY on PostgreSQL — per batch), so memory is
// bounded by the batch, not by the number of tasks; the database works on one batch while the
// events of the previous one are encoded and validated (shuffleOpen). A second shuffle started
// meanwhile waits for the first (advisory lock on PostgreSQL; SQLite's write lock) and then
// shuffles again. A completion racing a shuffle is serialized by the row locks (R-TASK-8): a
// task completed before the shuffle reaches it is skipped, a task the shuffle reassigned cannot
// be completed by its old assignee.
func (s *Service) Shuffle(ctx context.Context, actor identity.Actor) (int, error) {
	if !actor.Is(identity.Admin, identity.Manager) {
		return 0, errs.E(errs.Forbidden, "only an admin or a manager can reshuffle tasks")
	}
	total := 0
	shuffle := func(tx querier, client *tasksdb.Client) error {
		total = 0
		if s.dialect == dialect.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", shuffleLock); err != nil {
				return fmt.Errorf("tasks: waiting for a running shuffle: %w", err)
			}
		}
		popugs, err := assignable(client.Account.Query()).Order(tasksdb.Asc(account.FieldID)).
			Select(account.FieldPublicID).Strings(ctx)
		if err != nil {
			return fmt.Errorf("tasks: loading assignable popugs: %w", err)
		}
		if len(popugs) == 0 {
			open, err := client.Task.Query().Where(task.StatusEQ(task.StatusOPEN)).Exist(ctx)
			if err != nil {
				return fmt.Errorf("tasks: looking for open tasks: %w", err)
			}
			if open {
				return errNoAssignee
			}
			return nil
		}
		n, err := s.shuffleOpen(ctx, tx, popugs, s.now().UTC())
		total = n
		return err
	}
	var err error
	if s.db != nil && s.dialect == dialect.Postgres {
		// On the pool's own transaction the outbox rows go by COPY (outbox.Preparer); the
		// Ent queries run on the same transaction.
		begin := func(ctx context.Context) (*sql.Tx, error) { return s.db.BeginTx(ctx, nil) }
		err = storage.InTx(ctx, begin, func(tx *sql.Tx) error {
			return shuffle(tx, tasksdb.NewClient(tasksdb.Driver(entsql.NewDriver(s.dialect, entsql.Conn{ExecQuerier: tx}))))
		})
	} else {
		err = s.inTx(ctx, func(tx *tasksdb.Tx) error { return shuffle(tx, tx.Client()) })
	}
	if err != nil {
		return 0, err
	}
	if total > 0 {
		s.notify()
	}
	s.log.InfoContext(ctx, "tasks shuffled", "reassigned", total, "by", actor.AccountID)
	return total, nil
}

// shuffled is one open task in a shuffle batch.
type shuffled struct {
	key        int64
	id         string
	previous   string
	next       string
	reassigned bool
}

// querier is the shuffle's transaction: an Ent *tasksdb.Tx or, on PostgreSQL, a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Service) openBatch(ctx context.Context, tx querier, after int64) ([]shuffled, error) {
	q := "SELECT id, public_id, assignee_id FROM tasks WHERE status = 'OPEN' AND id > ? ORDER BY id LIMIT ?"
	if s.dialect == dialect.Postgres {
		q = "SELECT id, public_id::text, assignee_id::text FROM tasks WHERE status = 'OPEN' AND id > $1 ORDER BY id LIMIT $2"
	}
	rows, err := tx.QueryContext(ctx, q, after, s.batch)
	if err != nil {
		return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
	}
	defer rows.Close()
	batch := make([]shuffled, 0, s.batch)
	for rows.Next() {
		var t shuffled
		if err := rows.Scan(&t.key, &t.id, &t.previous); err != nil {
			return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
		}
		batch = append(batch, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tasks: reading open tasks: %w", err)
	}
	return batch, nil
}

// shuffleOpen reassigns every open task, batch by batch in id order, and stores the
// task.assigned events of those it reassigned and their counters; it returns how many it
// reassigned.
//
// The transaction's statements run one at a time and in order on a txQueue, while this
// goroutine draws the assignees and builds, encodes and validates the events: the database
// updates batch k+1 and reads batch k+2 while the events of batch k are validated, and their
// INSERT queues behind. Draws are made batch after batch in id order, as without the overlap.
// At most three batches are in flight, so memory stays bounded by the batch size.
func (s *Service) shuffleOpen(ctx context.Context, tx querier, popugs []string, now time.Time) (int, error) {
	q := newTxQueue()
	defer q.close()
	read := func(after int64) (*[]shuffled, <-chan error) {
		batch := new([]shuffled)
		return batch, q.do(func() (err error) {
			*batch, err = s.openBatch(ctx, tx, after)
			return err
		})
	}
	update := func(batch []shuffled) (*map[int64]bool, <-chan error) {
		for i := range batch {
			batch[i].next = popugs[s.rand.IntN(len(popugs))]
		}
		updated := new(map[int64]bool)
		return updated, q.do(func() (err error) {
			*updated, err = s.reassign(ctx, tx, batch)
			return err
		})
	}

	next, readDone := read(0)
	if err := <-readDone; err != nil {
		return 0, err
	}
	batch := *next
	if len(batch) == 0 {
		return 0, nil
	}
	updated, updateDone := update(batch)
	next, readDone = read(batch[len(batch)-1].key)
	total := 0
	counts := countChanges{}
	for len(batch) > 0 {
		recs, err := assignedEvents(ctx, batch, now) // while the database updates the batch
		if err != nil {
			return 0, err
		}
		if err := <-updateDone; err != nil {
			return 0, err
		}
		done := *updated
		if err := <-readDone; err != nil {
			return 0, err
		}
		following := *next
		if len(following) > 0 { // queued before this batch's events are validated
			updated, updateDone = update(following)
			next, readDone = read(following[len(following)-1].key)
		}
		kept := recs[:0]
		for i, r := range recs {
			if done[batch[i].key] { // else completed since the batch was read (R-TASK-8)
				kept = append(kept, r)
				from, err1 := uuid.Parse(batch[i].previous)
				to, err2 := uuid.Parse(batch[i].next)
				if err := errors.Join(err1, err2); err != nil {
					return 0, fmt.Errorf("tasks: counting a reassignment: %w", err)
				}
				counts.reassigned(from, to)
			}
		}
		if err := s.storeEvents(ctx, q, tx, kept); err != nil {
			return 0, err
		}
		total += len(kept)
		batch = following
	}
	// The counters go last, once every queued statement has run: they are locked only from
	// here to the commit, not while the tasks are reassigned.
	if err := <-q.do(func() error { return counts.apply(ctx, s.dialect, tx) }); err != nil {
		return 0, err
	}
	return total, nil
}

// storeEvents validates a batch's events here and queues their INSERT — or, through a *sql.Tx
// on PostgreSQL, their COPY — behind the batch's UPDATE.
func (s *Service) storeEvents(ctx context.Context, q *txQueue, tx querier, recs []outbox.Record) error {
	p, ok := tx.(outbox.Preparer)
	if !ok || s.dialect != dialect.Postgres || len(recs) == 0 {
		return s.outbox.Append(ctx, queuedExec{q: q, tx: tx}, recs...)
	}
	rows, err := s.outbox.Rows(recs...)
	if err != nil {
		return err
	}
	q.do(func() error { return outbox.CopyRows(ctx, p, rows) })
	return nil
}

// assignedEvents builds the task.assigned event of every task of the batch.
func assignedEvents(ctx context.Context, batch []shuffled, now time.Time) ([]outbox.Record, error) {
	recs := make([]outbox.Record, len(batch))
	for i, t := range batch {
		id, _ := uuid.Parse(t.id)
		next, _ := uuid.Parse(t.next)
		prev := t.previous
		rec, err := assignedEvent(ctx, Task{ID: id, AssigneeID: next}, &prev, contract.AssignedOnShuffle, now)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
	}
	return recs, nil
}

// reassign updates the batch's tasks that are still open and returns the keys it updated.
func (s *Service) reassign(ctx context.Context, tx querier, batch []shuffled) (map[int64]bool, error) {
	var (
		q    string
		args []any
	)
	if s.dialect == dialect.Postgres {
		keys, next := make([]int64, len(batch)), make([]string, len(batch))
		for i, t := range batch {
			keys[i], next[i] = t.key, t.next
		}
		// The batch is a run of ids in order: bounding t.id by its first and last lets the
		// planner read just that range of the primary key, where it would otherwise hash the
		// whole table to join it with the array (cost ∝ all tasks, per batch).
		q = `UPDATE tasks AS t SET assignee_id = v.a FROM unnest($1::bigint[], $2::uuid[]) AS v(id, a)
			WHERE t.id = v.id AND t.id BETWEEN $3 AND $4 AND t.status = 'OPEN' RETURNING t.id`
		args = []any{pq.Int64Array(keys), pq.StringArray(next), keys[0], keys[len(keys)-1]}
	} else {
		var b strings.Builder
		b.WriteString("UPDATE tasks SET assignee_id = v.column2 FROM (VALUES ")
		args = make([]any, 0, 2*len(batch))
		for i, t := range batch {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?,?)")
			args = append(args, t.key, t.next)
		}
		b.WriteString(") AS v WHERE tasks.id = v.column1 AND tasks.status = 'OPEN' RETURNING tasks.id")
		q = b.String()
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("tasks: reassigning tasks: %w", err)
	}
	defer rows.Close()
	updated := make(map[int64]bool, len(batch))
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("tasks: reassigning tasks: %w", err)
		}
		updated[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tasks: reassigning tasks: %w", err)
	}
	return updated, nil
}

// txQueue runs a transaction's statements one at a time, in the order they were queued, on a
// goroutine of its own, so the caller can go on computing meanwhile. Once an operation fails,
// the ones after it are skipped and report that error.
type txQueue struct {
	ops     chan txOp
	done    chan struct{}
	closing atomic.Bool
}

type txOp struct {
	run    func() error
	result chan error
}

func newTxQueue() *txQueue {
	q := &txQueue{ops: make(chan txOp, 8), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		var failed error
		for op := range q.ops {
			if failed == nil && q.closing.Load() {
				failed = errors.New("tasks: the shuffle stopped before this statement ran")
			}
			if failed == nil {
				failed = op.run()
			}
			op.result <- failed
		}
	}()
	return q
}

// do queues run; the channel receives its error, or an earlier operation's (run is then skipped).
func (q *txQueue) do(run func() error) <-chan error {
	res := make(chan error, 1)
	q.ops <- txOp{run: run, result: res}
	return res
}

// close skips what is still queued and waits for the running operation: the transaction is
// the caller's again.
func (q *txQueue) close() {
	q.closing.Store(true)
	close(q.ops)
	<-q.done
}

// queuedExec hands the outbox writer's statements to a txQueue: ExecContext returns once the
// statement is queued, and a database error reaches the shuffle at its next wait, which then
// fails and rolls the whole transaction back.
type queuedExec struct {
	q  *txQueue
	tx querier
}

func (e queuedExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	e.q.do(func() error {
		_, err := e.tx.ExecContext(ctx, query, args...)
		return err
	})
	return queuedResult{}, nil
}

// queuedResult is the result of a statement that has not run yet.
type queuedResult struct{}

func (queuedResult) LastInsertId() (int64, error) {
	return 0, errors.New("tasks: a queued statement has no result yet")
}

func (queuedResult) RowsAffected() (int64, error) {
	return 0, errors.New("tasks: a queued statement has no result yet")
}
