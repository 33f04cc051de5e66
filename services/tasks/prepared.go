package tasks

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/uberpopug/ates/ent/eventschema"
	"github.com/uberpopug/ates/services/outbox"
)

// outboxValues is the INSERT that ends a statement storing a use case's events with its change
// (createSQL, completeSQL): n outbox rows, each from six parameters numbered after the fixed
// ones, inserted once for each row of from — the change's CTE, one row when it happened, none
// otherwise — in the order given (their ids order them for the relay). Its parameters are
// appendRowArgs'.
func outboxValues(fixed, n int, from string) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + eventschema.OutboxTable + ` (event_id, name, version, aggregate_key, payload, created_at)
SELECT e.event_id, e.name, e.version, e.aggregate_key, e.payload, e.created_at
FROM ` + from + `, (VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		k := fixed + i*6
		fmt.Fprintf(&b, "($%d::text, $%d::text, $%d::bigint, $%d::text, $%d::text, $%d::timestamptz, %d)", k+1, k+2, k+3, k+4, k+5, k+6, i)
	}
	b.WriteString(`) AS e(event_id, name, version, aggregate_key, payload, created_at, n)
ORDER BY e.n`)
	return b.String()
}

// appendRowArgs appends the outbox rows' parameters of outboxValues to args.
func appendRowArgs(args []any, rows []outbox.Row) []any {
	for _, r := range rows {
		args = append(args, r.EventID, r.Name, r.Version, r.Key, r.Payload, r.CreatedAt)
	}
	return args
}

// exec runs one of the service's own statements: prepared when the service has the connection
// pool (Config.DB), so PostgreSQL parses and plans it once per connection instead of once per
// call (for Create's statement about a third of its CPU time per task); otherwise as is.
func (s *Service) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.db == nil {
		return s.client.ExecContext(ctx, query, args...)
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// queryRow is exec for a query of one row.
func (s *Service) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	if s.db == nil {
		rows, err := s.client.QueryContext(ctx, query, args...)
		return firstRow{rows, err}
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return firstRow{nil, err}
	}
	return st.QueryRowContext(ctx, args...)
}

type rowScanner interface{ Scan(dest ...any) error }

// firstRow scans the first row of rows as sql.Row does (sql.ErrNoRows when there is none).
type firstRow struct {
	rows *sql.Rows
	err  error
}

func (r firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// prepared returns query prepared on the pool (database/sql prepares it on each connection when
// first used there); a failed preparation is tried again on the next call. Once prepared, a
// statement is found without a lock: every completion and creation asks.
func (s *Service) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	s.stmtsMu.Lock()
	defer s.stmtsMu.Unlock()
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("tasks: preparing a statement: %w", err)
	}
	s.stmts.Store(query, st)
	return st, nil
}
