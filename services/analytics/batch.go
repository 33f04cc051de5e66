package analytics

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/services/event"
)

// ApplyBatch applies consumed events in the consumer's transaction (the inbox's HandleBatch;
// R-AN-4): the same read models as Apply for each in turn, which do not depend on the order
// events come in. It takes its row locks in one order, the same for every batch — the tasks' rows
// by task id, the days' tops by day, ledger entries by entry id, balances by account, day
// balances by account and day, closes by event id — so that the consumer's concurrent workers
// wait for each other's batches but never deadlock. (Applied one after another, two batches
// naming the same account and the same task in opposite orders deadlock on PostgreSQL, and
// each such deadlock stalls both for a second before one of them is given up.) An event that
// cannot be read fails the batch, whose events the inbox then applies one by one.
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
