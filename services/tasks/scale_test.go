package tasks_test

import (
	"context"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/storage/storagetest"
)

// TestShuffle100kOpenTasks: R-TASK-4 — one shuffle of 100 000 open tasks on PostgreSQL
// reassigns every one of them exactly once, each with one task.assigned event naming its
// previous and its new (stored) assignee, spread uniformly over the popugs. The duration is
// logged, not asserted (benchmarks measure speed).
func TestShuffle100kOpenTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("100 000 tasks: skipped with -short")
	}
	t.Parallel()
	const total = 100_000
	db := storagetest.MustOpen(t, dialect.Postgres)
	h := MustService(t, db)
	ctx := context.Background()
	manager := h.MustPopug(t, identity.Manager)
	h.MustPopug(t, identity.Admin)
	var popugs []string
	for _, r := range []identity.Role{identity.Worker, identity.Worker, identity.Worker, identity.Accountant, identity.Worker} {
		popugs = append(popugs, h.MustPopug(t, r).AccountID.String())
	}
	// Not assignable, so never drawn: a deactivated worker.
	gone := h.MustPopug(t, identity.Worker)
	h.MustUpdate(t, gone.AccountID, identity.Worker, false)

	began := time.Now()
	_, err := db.SQL.ExecContext(ctx, `INSERT INTO tasks (public_id, title, description, status, assignee_id, created_at)
		SELECT gen_random_uuid(), 'Task ' || g, 'Scale test task ' || g, CASE WHEN g % 10 = 0 THEN 'DONE' ELSE 'OPEN' END,
			($1::uuid[])[1 + g % 5], $2
		FROM generate_series(1, $3::int) AS g`, pq.Array(popugs), start, total+total/9)
	if err != nil {
		t.Fatalf("inserting tasks: %v", err)
	}
	// 111 111 tasks, every tenth DONE: 100 000 open.
	if _, err := db.SQL.ExecContext(ctx, `UPDATE tasks SET completed_at = created_at WHERE status = 'DONE';
		CREATE TABLE before_shuffle AS SELECT public_id, status, assignee_id FROM tasks; ANALYZE tasks`); err != nil {
		t.Fatal(err)
	}
	var open int
	if err := db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM tasks WHERE status = 'OPEN'`).Scan(&open); err != nil || open != total {
		t.Fatalf("set up %d open tasks (%v), want %d", open, err, total)
	}
	t.Logf("inserting %d tasks took %s", total+total/9, time.Since(began).Round(time.Millisecond))

	began = time.Now()
	n, err := h.svc.Shuffle(ctx, manager)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("Shuffle: %v", err)
	}
	t.Logf("shuffling %d open tasks took %s", n, took.Round(time.Millisecond))
	if n != total {
		t.Fatalf("Shuffle = %d, want %d", n, total)
	}

	count := func(q string) int {
		t.Helper()
		var c int
		if err := db.SQL.QueryRowContext(ctx, q).Scan(&c); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return c
	}
	if c := count(`SELECT count(*) FROM outbox_events WHERE name = 'task.assigned'`); c != total {
		t.Fatalf("%d task.assigned events, want %d", c, total)
	}
	// The events' data as a table (the payload is the envelope's JSON text), so the checks
	// below are hash joins.
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE assigned AS
		SELECT aggregate_key, (payload::jsonb->'data'->>'taskId')::uuid AS task_id,
			(payload::jsonb->'data'->>'assigneeId')::uuid AS assignee_id,
			(payload::jsonb->'data'->>'previousAssigneeId')::uuid AS previous_id,
			payload::jsonb->'data'->>'reason' AS reason
		FROM outbox_events WHERE name = 'task.assigned';
		ANALYZE assigned; ANALYZE before_shuffle`); err != nil {
		t.Fatal(err)
	}
	// Exactly one per task: group by the payload's taskId.
	if c := count(`SELECT count(*) FROM (SELECT task_id FROM assigned GROUP BY task_id HAVING count(*) = 1) AS once`); c != total {
		t.Fatalf("%d tasks have exactly one task.assigned event, want %d", c, total)
	}
	// Each event is about an open task, from its assignee before to its assignee now, keyed by it.
	if c := count(`SELECT count(*) FROM assigned a
		JOIN tasks t ON t.public_id = a.task_id
		JOIN before_shuffle b ON b.public_id = a.task_id
		WHERE b.status = 'OPEN' AND t.status = 'OPEN' AND a.reason = 'shuffle'
			AND a.aggregate_key = t.public_id::text
			AND a.assignee_id = t.assignee_id AND a.previous_id = b.assignee_id`); c != total {
		t.Fatalf("%d events match their task's previous and new assignee, want %d", c, total)
	}
	// DONE tasks were not touched (R-TASK-7).
	if c := count(`SELECT count(*) FROM tasks t JOIN before_shuffle b USING (public_id)
		WHERE b.status = 'DONE' AND t.status = 'DONE' AND t.assignee_id = b.assignee_id`); c != total/9 {
		t.Fatalf("%d DONE tasks untouched, want %d", c, total/9)
	}
	// Uniform over the five assignable popugs: 20 000 each, within about 4.7 standard deviations.
	rows, err := db.SQL.QueryContext(ctx, `SELECT assignee_id::text, count(*) FROM tasks WHERE status = 'OPEN' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var c int
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		got[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(popugs) {
		t.Fatalf("open tasks went to %d popugs, want the %d assignable: %v", len(got), len(popugs), got)
	}
	for _, p := range popugs {
		if c := got[p]; c < total/5-600 || c > total/5+600 {
			t.Fatalf("popug %s got %d of %d tasks, want about %d: %v", p, c, total, total/5, got)
		}
	}
}
