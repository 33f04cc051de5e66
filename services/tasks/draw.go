package tasks

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/outbox"
)

// On PostgreSQL, Create is one statement (createPostgres): the assignee is drawn in Go from a
// snapshot of the assignable popugs, and the statement stores the task and its outbox rows
// only if the replica is still the one the snapshot was taken from. See docs/decisions.md,
// "createTask on PostgreSQL: one statement, draw from a checked snapshot".

// replicaState identifies a state of the account replica: how many accounts it holds and the sum
// of their versions. The replica only changes through upsertAccount, which inserts an account
// or raises its version, so every change raises one of the two: two states of the replica's
// history with the same replicaState are the same state.
type replicaState struct {
	accounts, versions int64
}

// popugPool is a snapshot of the assignable popugs (R-TASK-3) in id order, with the replica
// state it was read at.
type popugPool struct {
	state  replicaState
	popugs []uuid.UUID
}

// pools holds the current snapshot, shared by every Create of the service.
type pools struct {
	cur atomic.Pointer[popugPool]
	mu  sync.Mutex // serializes reloads
}

// loadPool reads the assignable popugs and the replica state in one statement, so both come
// from the same snapshot of the database.
const loadPool = `SELECT r.accounts, r.versions, a.public_id
FROM (SELECT count(*) AS accounts, coalesce(sum(version), 0)::bigint AS versions FROM accounts) AS r
LEFT JOIN accounts AS a ON ` + assignableSQLQualified + `
ORDER BY a.id`

// assignableSQLQualified is assignableSQL on the alias a.
const assignableSQLQualified = "a.active AND a.role NOT IN ('ADMIN', 'MANAGER')"

// pool returns the current snapshot, reading one when there is none or when stale is the
// current one (a statement found it outdated); a reload another Create did meanwhile is used
// as is.
func (s *Service) pool(ctx context.Context, stale *popugPool) (*popugPool, error) {
	if p := s.pools.cur.Load(); p != nil && p != stale {
		return p, nil
	}
	s.pools.mu.Lock()
	defer s.pools.mu.Unlock()
	if p := s.pools.cur.Load(); p != nil && p != stale {
		return p, nil
	}
	rows, err := s.client.QueryContext(ctx, loadPool)
	if err != nil {
		return nil, fmt.Errorf("tasks: loading assignable popugs: %w", err)
	}
	defer rows.Close()
	p := &popugPool{}
	for rows.Next() {
		var id uuid.NullUUID
		if err := rows.Scan(&p.state.accounts, &p.state.versions, &id); err != nil {
			return nil, fmt.Errorf("tasks: loading assignable popugs: %w", err)
		}
		if id.Valid {
			p.popugs = append(p.popugs, id.UUID)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("tasks: loading assignable popugs: %w", err)
	}
	s.pools.cur.Store(p)
	return p, nil
}

// createPostgres stores t with its task.created and task.assigned events in one statement
// (R-TASK-2, R-EVT-4): one round trip, no BEGIN or COMMIT. The assignee is drawn uniformly from
// the snapshot of assignable popugs (R-TASK-3); the statement inserts nothing when the replica
// is no longer in the snapshot's state, and the draw is then repeated from a fresh snapshot. So
// the draw is uniform over the popugs assignable when the statement runs, as with a draw in the
// same transaction. The outbox rows are the writer's, validated (outbox.Writer.Rows).
func (s *Service) createPostgres(ctx context.Context, t Task) (Task, error) {
	var stale *popugPool
	for attempt := range 3 {
		p, err := s.pool(ctx, stale)
		if err != nil {
			return Task{}, err
		}
		if len(p.popugs) == 0 {
			if attempt == 0 && stale == nil {
				// An empty snapshot may be old: someone may have become assignable since.
				stale = p
				continue
			}
			return Task{}, errNoAssignee
		}
		t.AssigneeID = p.popugs[s.rand.IntN(len(p.popugs))]
		recs, err := taskCreatedRecords(ctx, t)
		if err != nil {
			return Task{}, err
		}
		rows, err := s.outbox.Rows(recs...)
		if err != nil {
			return Task{}, err
		}
		res, err := s.exec(ctx, createSQL, createArgs(t, p.state, rows)...)
		if err != nil {
			return Task{}, fmt.Errorf("tasks: storing task: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return Task{}, fmt.Errorf("tasks: storing task: %w", err)
		}
		switch n {
		case createEvents:
			return t, nil
		case 0: // the replica changed since the snapshot: draw again from a fresh one
			stale = p
		default:
			return Task{}, fmt.Errorf("tasks: storing task: %d outbox rows stored, want %d", n, createEvents)
		}
	}
	return Task{}, errs.E(errs.Conflict, "the assignable popugs changed while the task was being assigned; try again")
}

// createEvents is how many outbox rows a created task has: task.created and task.assigned.
const createEvents = 2

// createSQL is the statement of createPostgres: the task, inserted only when the replica is in
// the snapshot's state and the assignee is assignable, its counter (countChanges.created), and
// the outbox rows, inserted only with the task, in the order given (their ids order them for
// the relay). It affects createEvents rows when it stored the task, none otherwise. Its parameters are createArgs.
var createSQL = `WITH replica AS (
	SELECT count(*) AS accounts, coalesce(sum(version), 0)::bigint AS versions FROM accounts
), task AS (
	INSERT INTO tasks (public_id, title, jira_id, description, status, assignee_id, created_at)
	SELECT $1::uuid, $2::text, $3::text, $4::text, 'OPEN', a.public_id, $5::timestamptz
	FROM replica, accounts AS a
	WHERE replica.accounts = $6::bigint AND replica.versions = $7::bigint AND a.public_id = $8::uuid
		AND ` + assignableSQLQualified + `
	RETURNING id, public_id, assignee_id
), searched AS (
	INSERT INTO task_search (task_id, search_text) SELECT id, $9::text FROM task
), counted AS (
	` + countCreatedSQL + `
)
` + outboxValues(createFixedArgs, createEvents, "task")

// createFixedArgs is how many of createSQL's parameters are the task's and the snapshot's.
const createFixedArgs = 9

// createArgs are createSQL's parameters.
func createArgs(t Task, state replicaState, rows []outbox.Row) []any {
	args := make([]any, 0, createFixedArgs+6*len(rows))
	args = append(args, t.ID, t.Title, t.JiraID, t.Description, t.CreatedAt, state.accounts, state.versions, t.AssigneeID,
		SearchText(t.Title, t.JiraID, t.Description))
	return appendRowArgs(args, rows)
}
