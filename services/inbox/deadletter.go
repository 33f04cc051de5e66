package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/backoff"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/fault"
	"github.com/uberpopug/ates/services/storage"
)

// Dead-letter statuses (R-EVT-2).
const (
	// StatusDead marks a dead letter waiting to be re-driven.
	StatusDead = "dead"
	// StatusRedriven marks a dead letter whose event was applied by a re-drive.
	StatusRedriven = "redriven"
)

// DeadLetter is an event a consumer could not process, kept visible and re-drivable (R-EVT-2).
type DeadLetter struct {
	ID       int64
	Consumer string
	// EventID is the event's id; for a body without one, the message id or a hash of the body.
	EventID string
	Name    string
	Version int
	// Payload is the body as received.
	Payload []byte
	// Error is the last failure.
	Error string
	// Attempts counts every attempt so far, re-drives included.
	Attempts  int
	Status    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

var deadLetterColumns = []string{
	"id", "consumer", "event_id", "name", "version", "payload", "error", "attempts", "status",
	"created_at", "updated_at",
}

// deadLetter stores (or updates) the dead letter of an event the consumer gives up on, in its
// own statement, and acknowledges it by returning nil; it returns the error when the store
// fails, so the transport redelivers the event instead of dropping it (R-EVT-2, R-EVT-5).
func (c *Consumer[T]) deadLetter(ctx context.Context, l DeadLetter, body []byte, cause error, attempts int) error {
	msg := cause.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText] + "…"
	}
	now := c.cfg.Now().UTC()
	query, args := entsql.Dialect(c.cfg.Dialect).
		Insert(eventschema.DeadLetterTable).
		Columns("consumer", "event_id", "name", "version", "payload", "error", "attempts", "status", "created_at", "updated_at").
		Values(c.cfg.Name, l.EventID, l.Name, l.Version, string(body), msg, attempts, StatusDead, now, now).
		OnConflict(
			entsql.ConflictColumns("consumer", "event_id"),
			entsql.ResolveWith(func(u *entsql.UpdateSet) {
				for _, col := range []string{"name", "version", "payload", "error", "status", "updated_at"} {
					u.SetExcluded(col)
				}
				excluded := entsql.Dialect(c.cfg.Dialect).Table("excluded")
				u.Set("attempts", entsql.Expr(u.Table().C("attempts")+" + "+excluded.C("attempts")))
			}),
		).
		Query()
	waits := backoff.New(c.cfg.OutageBackoff)
	for {
		_, err := c.cfg.DB.ExecContext(ctx, query, args...)
		if err == nil {
			break
		}
		if fault.IsTransient(ctx, err) {
			// The store is away for a moment: the event waits for it, as it would to be applied.
			if ok, _ := c.waitOut(ctx, waits, err, "event_id", l.EventID, "event", l.Name, "storing", "dead letter"); ok {
				continue
			}
		}
		c.log.Error("storing a dead letter failed; the event goes back to the queue",
			"event_id", l.EventID, "event", l.Name, "version", l.Version, "cause", cause, "error", err)
		return fmt.Errorf("inbox %s: dead-lettering event %s (%w): %w", c.cfg.Name, l.EventID, cause, err)
	}
	c.deadLettered.Inc()
	c.log.Error("event dead-lettered", "event_id", l.EventID, "event", l.Name, "version", l.Version,
		"attempts", attempts, "permanent", IsPermanent(cause), "error", cause)
	return nil
}

// ListDeadLetters returns the dead letters of every consumer of db with the status (StatusDead,
// StatusRedriven, or "" for all), oldest first (R-EVT-2).
func ListDeadLetters(ctx context.Context, db *storage.DB, status string) ([]DeadLetter, error) {
	if db == nil {
		return nil, errors.New("inbox: ListDeadLetters needs a database")
	}
	sel := entsql.Dialect(db.Dialect).
		Select(deadLetterColumns...).
		From(entsql.Table(eventschema.DeadLetterTable)).
		OrderBy("id")
	switch status {
	case "":
	case StatusDead, StatusRedriven:
		sel.Where(entsql.EQ("status", status))
	default:
		return nil, errs.E(errs.Invalid, "unknown dead-letter status %q (want %q or %q)", status, StatusDead, StatusRedriven)
	}
	query, args := sel.Query()
	rows, err := db.SQL.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("inbox: listing dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		l, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("inbox: listing dead letters: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inbox: listing dead letters: %w", err)
	}
	return out, nil
}

func scanDeadLetter(rows *sql.Rows) (DeadLetter, error) {
	var (
		l       DeadLetter
		payload string
	)
	err := rows.Scan(&l.ID, &l.Consumer, &l.EventID, &l.Name, &l.Version, &payload, &l.Error,
		&l.Attempts, &l.Status, &l.CreatedAt, &l.UpdatedAt)
	l.Payload = []byte(payload)
	return l, err
}

// Redrive processes the consumer's dead letter id again through the consumer's path
// (validation, inbox record, Handle, retries) and marks it StatusRedriven in the applying
// transaction; when the event was applied meanwhile, it is only marked. On failure the dead
// letter keeps StatusDead with the new error and attempts added, and the error is returned
// (R-EVT-2).
func (c *Consumer[T]) Redrive(ctx context.Context, id int64) error {
	l, err := c.loadDeadLetter(ctx, id)
	if err != nil {
		return err
	}
	if l.Status != StatusDead {
		return errs.E(errs.Conflict, "dead letter %d of consumer %s is %s, not %s", id, c.cfg.Name, l.Status, StatusDead)
	}
	e, err := c.cfg.Registry.Parse(l.Payload)
	if err != nil {
		err = fmt.Errorf("invalid event: %w", err)
		return c.redriveFailed(ctx, l, err, 1)
	}
	mark := func(ctx context.Context, tx T) error {
		query, args := c.markRedriven(id)
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("inbox %s: marking dead letter %d redriven: %w", c.cfg.Name, id, err)
		}
		return nil
	}
	applied, attempts, err := c.apply(ctx, e, mark)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("inbox %s: redriving dead letter %d: %w", c.cfg.Name, id, err)
		}
		return c.redriveFailed(ctx, l, err, attempts)
	}
	if !applied { // applied meanwhile, e.g. by a later redelivery: only mark it
		query, args := c.markRedriven(id)
		if _, err := c.cfg.DB.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("inbox %s: marking dead letter %d redriven: %w", c.cfg.Name, id, err)
		}
	}
	c.log.Info("dead letter redriven", "dead_letter", id, "event_id", e.ID, "event", e.Name,
		"applied_now", applied)
	return nil
}

// RedriveAll re-drives every dead letter of the consumer with StatusDead, oldest first, and
// returns how many were redriven; failures are joined into the error and do not stop the others
// (R-EVT-2).
func (c *Consumer[T]) RedriveAll(ctx context.Context) (int, error) {
	query, args := entsql.Dialect(c.cfg.Dialect).
		Select("id").
		From(entsql.Table(eventschema.DeadLetterTable)).
		Where(entsql.And(entsql.EQ("consumer", c.cfg.Name), entsql.EQ("status", StatusDead))).
		OrderBy("id").
		Query()
	rows, err := c.cfg.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("inbox %s: listing dead letters: %w", c.cfg.Name, err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("inbox %s: listing dead letters: %w", c.cfg.Name, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("inbox %s: listing dead letters: %w", c.cfg.Name, err)
	}
	var (
		redriven int
		failures []error
	)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			failures = append(failures, err)
			break
		}
		if err := c.Redrive(ctx, id); err != nil {
			failures = append(failures, err)
			continue
		}
		redriven++
	}
	return redriven, errors.Join(failures...)
}

func (c *Consumer[T]) loadDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	query, args := entsql.Dialect(c.cfg.Dialect).
		Select(deadLetterColumns...).
		From(entsql.Table(eventschema.DeadLetterTable)).
		Where(entsql.And(entsql.EQ("id", id), entsql.EQ("consumer", c.cfg.Name))).
		Query()
	rows, err := c.cfg.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("inbox %s: reading dead letter %d: %w", c.cfg.Name, id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return DeadLetter{}, fmt.Errorf("inbox %s: reading dead letter %d: %w", c.cfg.Name, id, err)
		}
		return DeadLetter{}, errs.E(errs.NotFound, "dead letter %d of consumer %s not found", id, c.cfg.Name)
	}
	l, err := scanDeadLetter(rows)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("inbox %s: reading dead letter %d: %w", c.cfg.Name, id, err)
	}
	return l, nil
}

// markRedriven is the UPDATE that marks dead letter id redriven.
func (c *Consumer[T]) markRedriven(id int64) (string, []any) {
	return entsql.Dialect(c.cfg.Dialect).
		Update(eventschema.DeadLetterTable).
		Set("status", StatusRedriven).
		Set("updated_at", c.cfg.Now().UTC()).
		Where(entsql.And(entsql.EQ("id", id), entsql.EQ("status", StatusDead))).
		Query()
}

// redriveFailed records a failed re-drive on the dead letter and returns the failure.
func (c *Consumer[T]) redriveFailed(ctx context.Context, l DeadLetter, cause error, attempts int) error {
	msg := cause.Error()
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText] + "…"
	}
	query, args := entsql.Dialect(c.cfg.Dialect).
		Update(eventschema.DeadLetterTable).
		Set("error", msg).
		Add("attempts", attempts).
		Set("updated_at", c.cfg.Now().UTC()).
		Where(entsql.EQ("id", l.ID)).
		Query()
	if _, err := c.cfg.DB.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("inbox %s: redriving dead letter %d failed (%w); recording the failure: %w", c.cfg.Name, l.ID, cause, err)
	}
	c.log.Error("redriving a dead letter failed; it stays dead", "dead_letter", l.ID, "event_id", l.EventID,
		"event", l.Name, "attempts", attempts, "error", cause)
	return fmt.Errorf("inbox %s: redriving dead letter %d: %w", c.cfg.Name, l.ID, cause)
}
