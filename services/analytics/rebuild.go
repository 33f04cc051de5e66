package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/uberpopug/ates/ent/analyticsdb"
	"github.com/uberpopug/ates/ent/analyticsdb/account"
	"github.com/uberpopug/ates/ent/analyticsdb/accountday"
	"github.com/uberpopug/ates/ent/analyticsdb/dailytop"
	"github.com/uberpopug/ates/ent/analyticsdb/dayclose"
	"github.com/uberpopug/ates/ent/analyticsdb/ledgerentry"
	"github.com/uberpopug/ates/ent/analyticsdb/task"
	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
)

// ReplayBatch is how many events Replay applies per transaction.
const ReplayBatch = 500

// outboxPage is how many outbox rows ReadOutbox reads per query.
const outboxPage = 1000

// readModelTables are analytics' own tables, emptied by Reset.
var readModelTables = []string{task.Table, dailytop.Table, ledgerentry.Table, account.Table, accountday.Table, dayclose.Table}

// Reset empties analytics' read models and forgets which events it applied (its
// processed_events records), in one transaction, so a Replay of the event history rebuilds
// them from scratch (R-AN-4). Dead letters are kept: they stay visible, and re-driving one
// whose event a replay applied finds it applied. On PostgreSQL it first locks the inbox table,
// so it waits for the consumer's transactions in flight and holds new ones until it commits;
// SQLite has one writer at a time anyway. The read models are empty, and the figures partial,
// until the replay ends.
func (s *Service) Reset(ctx context.Context) error {
	err := storage.InTx(ctx, s.client.Tx, func(tx *analyticsdb.Tx) error {
		if s.dialect == dialect.Postgres {
			if _, err := tx.ExecContext(ctx, "LOCK TABLE "+eventschema.InboxTable+" IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "TRUNCATE "+strings.Join(readModelTables, ", ")); err != nil {
				return err
			}
		} else {
			for _, t := range readModelTables {
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, s.sql("DELETE FROM "+eventschema.InboxTable+" WHERE consumer = $1"), ConsumerName)
		return err
	})
	if err != nil {
		return fmt.Errorf("analytics: resetting the read models: %w", err)
	}
	return nil
}

// ReplayStats counts what a replay did.
type ReplayStats struct {
	// Events is how many events the replay read.
	Events int
	// Applied is how many it applied.
	Applied int
	// Duplicates is how many it found applied before (an event id met twice, or applied by
	// the live consumer during the replay).
	Duplicates int
	// DeadLettered is how many it could never apply and stored as dead letters.
	DeadLettered int
}

// Rebuild resets the read models and replays the sources one after the other (R-AN-4), e.g.
// the outboxes of auth, tasks and accounting read with OutboxEvents. Apply does not depend on
// the order of events, so the sources' events need not be interleaved by time.
func (s *Service) Rebuild(ctx context.Context, sources ...iter.Seq2[event.Envelope, error]) (ReplayStats, error) {
	if err := s.Reset(ctx); err != nil {
		return ReplayStats{}, err
	}
	var total ReplayStats
	for _, src := range sources {
		st, err := s.Replay(ctx, src)
		total.Events += st.Events
		total.Applied += st.Applied
		total.Duplicates += st.Duplicates
		total.DeadLettered += st.DeadLettered
		if err != nil {
			return total, err
		}
	}
	s.log.Info("analytics rebuilt", "events", total.Events, "applied", total.Applied,
		"duplicates", total.Duplicates, "dead_lettered", total.DeadLettered)
	return total, nil
}

// Replay applies events in the given order through Apply, ReplayBatch events per transaction,
// each with its processed-event record as the inbox keeps it (R-EVT-5): an event applied
// before is skipped, and the live consumer skips an event the replay applied when it is
// delivered again. Of a batch that fails, every event is retried in a transaction of its own:
// one that can never be applied (a permanent error) is stored as a dead letter, as the live
// consumer does, and the replay goes on; any other failure ends the replay with an error, and
// the batches committed so far stay (a new Replay of the same events skips them).
func (s *Service) Replay(ctx context.Context, events iter.Seq2[event.Envelope, error]) (ReplayStats, error) {
	var st ReplayStats
	batch := make([]event.Envelope, 0, ReplayBatch)
	for e, err := range events {
		if err != nil {
			return st, fmt.Errorf("analytics: reading events to replay: %w", err)
		}
		st.Events++
		batch = append(batch, e)
		if len(batch) == ReplayBatch {
			if err := s.replayBatch(ctx, batch, &st); err != nil {
				return st, err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := s.replayBatch(ctx, batch, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// replayBatch applies a batch in one transaction (ApplyBatch) or, when that fails, event by
// event.
func (s *Service) replayBatch(ctx context.Context, batch []event.Envelope, st *ReplayStats) error {
	var applied, dups int
	err := storage.InTx(ctx, s.client.Tx, func(tx *analyticsdb.Tx) error {
		fresh := make([]event.Envelope, 0, len(batch))
		for _, e := range batch {
			ok, err := s.recordProcessed(ctx, tx, e)
			if err != nil {
				return err
			}
			if ok {
				fresh = append(fresh, e)
			}
		}
		applied, dups = len(fresh), len(batch)-len(fresh)
		return s.ApplyBatch(ctx, tx, fresh)
	})
	if err == nil {
		st.Applied += applied
		st.Duplicates += dups
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("analytics: replay stopped: %w", err)
	}
	for _, e := range batch {
		var ok bool
		err := storage.InTx(ctx, s.client.Tx, func(tx *analyticsdb.Tx) error {
			var err error
			ok, err = s.applyOnce(ctx, tx, e)
			return err
		})
		switch {
		case err == nil && ok:
			st.Applied++
		case err == nil:
			st.Duplicates++
		case inbox.IsPermanent(err):
			if err := s.deadLetter(ctx, e, err); err != nil {
				return err
			}
			st.DeadLettered++
		default:
			return fmt.Errorf("analytics: replaying event %s v%d %s: %w", e.Name, e.Version, e.ID, err)
		}
	}
	return nil
}

// applyOnce records the event as processed by analytics and, when it was not before, applies
// it, in tx; it reports whether it applied it.
func (s *Service) applyOnce(ctx context.Context, tx *analyticsdb.Tx, e event.Envelope) (bool, error) {
	ok, err := s.recordProcessed(ctx, tx, e)
	if err != nil || !ok {
		return false, err
	}
	return true, s.Apply(ctx, tx, e)
}

// recordProcessed records the event as processed by analytics, in tx; it reports false when it
// was before.
func (s *Service) recordProcessed(ctx context.Context, tx *analyticsdb.Tx, e event.Envelope) (bool, error) {
	query, args := entsql.Dialect(s.dialect).
		Insert(eventschema.InboxTable).
		Columns("consumer", "event_id", "processed_at").
		Values(ConsumerName, e.ID, s.now().UTC()).
		OnConflict(entsql.ConflictColumns("consumer", "event_id"), entsql.DoNothing()).
		Query()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return false, fmt.Errorf("analytics: recording event %s as processed: %w", e.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("analytics: recording event %s as processed: %w", e.ID, err)
	} else if n == 0 {
		return false, nil
	}
	return true, nil
}

// deadLetter stores an event the replay can never apply in analytics' dead-letter store, where
// `ates deadletters` lists and re-drives it (R-EVT-2).
func (s *Service) deadLetter(ctx context.Context, e event.Envelope, cause error) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("analytics: dead-lettering event %s: %w", e.ID, err)
	}
	now := s.now().UTC()
	query, args := entsql.Dialect(s.dialect).
		Insert(eventschema.DeadLetterTable).
		Columns("consumer", "event_id", "name", "version", "payload", "error", "attempts", "status", "created_at", "updated_at").
		Values(ConsumerName, e.ID, e.Name, e.Version, string(body), cause.Error(), 1, inbox.StatusDead, now, now).
		OnConflict(
			entsql.ConflictColumns("consumer", "event_id"),
			entsql.ResolveWith(func(u *entsql.UpdateSet) {
				for _, col := range []string{"payload", "error", "status", "updated_at"} {
					u.SetExcluded(col)
				}
				u.Set("attempts", entsql.Expr(u.Table().C("attempts")+" + 1"))
			}),
		).
		Query()
	if _, err := s.client.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("analytics: dead-lettering event %s (%w): %w", e.ID, cause, err)
	}
	s.log.Error("replayed event dead-lettered", "event_id", e.ID, "event", e.Name, "version", e.Version, "error", cause)
	return nil
}

// ReadOutbox streams the events named names (all of them when names is empty) from one
// producer's outbox table — the event history every context keeps (docs/events.md) — in id
// order, i.e. the order the producer committed them, sent or not yet. Each payload is parsed
// and validated against the schema registry (R-EVT-2); an invalid one ends the read with an
// error naming the row. Rows are read in pages of 1 000 and no query is open while yield runs.
func ReadOutbox(ctx context.Context, db *sql.DB, dialectName string, names []string, yield func(event.Envelope) error) error {
	if db == nil {
		return errors.New("analytics: ReadOutbox needs a database")
	}
	if dialectName != dialect.SQLite && dialectName != dialect.Postgres {
		return fmt.Errorf("analytics: ReadOutbox: unsupported SQL dialect %q", dialectName)
	}
	reg, err := event.DefaultRegistry()
	if err != nil {
		return err
	}
	in := make([]any, len(names))
	for i, n := range names {
		in[i] = n
	}
	type row struct {
		id      int64
		payload string
	}
	var last int64
	for {
		sel := entsql.Dialect(dialectName).Select("id", "payload").From(entsql.Table(eventschema.OutboxTable)).
			Where(entsql.GT("id", last)).OrderBy("id").Limit(outboxPage)
		if len(in) > 0 {
			sel.Where(entsql.In("name", in...))
		}
		query, args := sel.Query()
		page, err := func() ([]row, error) {
			rows, err := db.QueryContext(ctx, query, args...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var page []row
			for rows.Next() {
				var r row
				if err := rows.Scan(&r.id, &r.payload); err != nil {
					return nil, err
				}
				page = append(page, r)
			}
			return page, rows.Err()
		}()
		if err != nil {
			return fmt.Errorf("analytics: reading the outbox: %w", err)
		}
		for _, r := range page {
			e, err := reg.Parse([]byte(r.payload))
			if err != nil {
				return fmt.Errorf("analytics: outbox row %d: %w", r.id, err)
			}
			if err := yield(e); err != nil {
				return err
			}
		}
		if len(page) < outboxPage {
			return nil
		}
		last = page[len(page)-1].id
	}
}

// OutboxEvents is ReadOutbox as an iterator, for Replay and Rebuild; a read error is its last
// element.
func OutboxEvents(ctx context.Context, db *sql.DB, dialectName string, names []string) iter.Seq2[event.Envelope, error] {
	return func(yield func(event.Envelope, error) bool) {
		errStop := errors.New("stopped")
		err := ReadOutbox(ctx, db, dialectName, names, func(e event.Envelope) error {
			if !yield(e, nil) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			yield(event.Envelope{}, err)
		}
	}
}
