package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uberpopug/ates/services/event"
)

// snapshot is what the suite reads from the contexts' databases to check the invariants.
type snapshot struct {
	entries   []*entry
	byEntry   map[string]*entry   // public id → entry
	byAccount map[string][]*entry // account → entries in ledger order
	balances  map[string]int64    // accounting: account → balance
	emails    map[string]string   // accounting: account → email
	prices    map[string]price    // accounting: task → price
	payments  []payment
	outbox    map[string][]*outboxEvent // context → its events in id order
	processed map[string]map[string]bool
	dead      map[string]int
	unsent    map[string]int
	tasks     map[string]taskRow
	anEntries map[string]anEntry // analytics' copy of the ledger
	anBalance map[string][2]int64
}

// entry is one ledger entry of accounting, with the time its balance.changed event was stored.
type entry struct {
	Seq          int64
	ID, Account  string
	Type         string
	Amount       int64
	BalanceAfter int64
	Task         string
	Source       string
	Day          string
	Created      time.Time // its balance.changed event's created_at: the commit, give or take
}

type price struct{ Fee, Reward int64 }

type payment struct {
	ID, Account, Day, Entry, Email string
	Amount                         int64
	Close                          int64
	EmailSent                      bool
}

// outboxEvent is one event of a context's outbox.
type outboxEvent struct {
	ID      int64
	Env     event.Envelope
	Created time.Time
	Sent    time.Time // zero: unsent
}

type taskRow struct {
	ID, Title, Status, Assignee string
}

type anEntry struct {
	Account            string
	Amount, After, Seq int64
}

// read takes a snapshot of every context's database.
func (s *stack) read(ctx context.Context) (*snapshot, error) {
	sn := &snapshot{byEntry: map[string]*entry{}, byAccount: map[string][]*entry{}, balances: map[string]int64{},
		emails: map[string]string{}, prices: map[string]price{}, outbox: map[string][]*outboxEvent{},
		processed: map[string]map[string]bool{}, dead: map[string]int{}, unsent: map[string]int{},
		tasks: map[string]taskRow{}, anEntries: map[string]anEntry{}, anBalance: map[string][2]int64{}}
	acc, tdb, an := s.dbs["accounting"], s.dbs["tasks"], s.dbs["analytics"]
	err := each(ctx, acc, `SELECT e.id, e.public_id::text, e.account_id::text, e.type, e.amount, e.balance_after, COALESCE(e.task_id::text, ''),
		e.source_event_id, e.day, o.created_at
		FROM entries e LEFT JOIN outbox_events o ON o.name = 'balance.changed' AND o.payload::jsonb->'data'->>'entryId' = e.public_id::text
		ORDER BY e.id`, func(r *sql.Rows) error {
		e := &entry{}
		var created sql.NullTime
		if err := r.Scan(&e.Seq, &e.ID, &e.Account, &e.Type, &e.Amount, &e.BalanceAfter, &e.Task, &e.Source, &e.Day, &created); err != nil {
			return err
		}
		e.Created = created.Time
		sn.entries = append(sn.entries, e)
		sn.byEntry[e.ID] = e
		sn.byAccount[e.Account] = append(sn.byAccount[e.Account], e)
		return nil
	})
	if err == nil {
		err = each(ctx, acc, `SELECT public_id::text, balance, email FROM accounts`, func(r *sql.Rows) error {
			var id, email string
			var b int64
			if err := r.Scan(&id, &b, &email); err != nil {
				return err
			}
			sn.balances[id], sn.emails[id] = b, email
			return nil
		})
	}
	if err == nil {
		err = each(ctx, acc, `SELECT public_id::text, fee, reward FROM tasks`, func(r *sql.Rows) error {
			var id string
			var p price
			if err := r.Scan(&id, &p.Fee, &p.Reward); err != nil {
				return err
			}
			sn.prices[id] = p
			return nil
		})
	}
	if err == nil {
		err = each(ctx, acc, `SELECT public_id::text, account_id::text, amount, day, entry_id::text, close_id, email_sent FROM payments ORDER BY id`, func(r *sql.Rows) error {
			var p payment
			if err := r.Scan(&p.ID, &p.Account, &p.Amount, &p.Day, &p.Entry, &p.Close, &p.EmailSent); err != nil {
				return err
			}
			sn.payments = append(sn.payments, p)
			return nil
		})
	}
	if err == nil {
		err = each(ctx, tdb, `SELECT public_id::text, title, status, assignee_id::text FROM tasks`, func(r *sql.Rows) error {
			var t taskRow
			if err := r.Scan(&t.ID, &t.Title, &t.Status, &t.Assignee); err != nil {
				return err
			}
			sn.tasks[t.ID] = t
			return nil
		})
	}
	if err == nil {
		err = each(ctx, an, `SELECT entry_id::text, account_id::text, amount, balance_after, sequence FROM ledger_entries`, func(r *sql.Rows) error {
			var id string
			var e anEntry
			if err := r.Scan(&id, &e.Account, &e.Amount, &e.After, &e.Seq); err != nil {
				return err
			}
			sn.anEntries[id] = e
			return nil
		})
	}
	if err == nil {
		err = each(ctx, an, `SELECT account_id::text, sequence, balance FROM accounts`, func(r *sql.Rows) error {
			var id string
			var seq, b int64
			if err := r.Scan(&id, &seq, &b); err != nil {
				return err
			}
			sn.anBalance[id] = [2]int64{seq, b}
			return nil
		})
	}
	for _, c := range contexts {
		if err != nil {
			break
		}
		db := s.dbs[c]
		err = each(ctx, db, `SELECT id, payload, created_at, sent_at FROM outbox_events ORDER BY id`, func(r *sql.Rows) error {
			e := &outboxEvent{}
			var payload string
			var sent sql.NullTime
			if err := r.Scan(&e.ID, &payload, &e.Created, &sent); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(payload), &e.Env); err != nil {
				return fmt.Errorf("outbox event %d of %s: %w", e.ID, c, err)
			}
			e.Sent = sent.Time
			if !sent.Valid {
				sn.unsent[c]++
			}
			sn.outbox[c] = append(sn.outbox[c], e)
			return nil
		})
		if err == nil {
			sn.processed[c] = map[string]bool{}
			err = each(ctx, db, `SELECT event_id FROM processed_events WHERE consumer = $1`, func(r *sql.Rows) error {
				var id string
				if err := r.Scan(&id); err != nil {
					return err
				}
				sn.processed[c][id] = true
				return nil
			}, c)
		}
		if err == nil {
			var n int
			err = db.QueryRowContext(ctx, `SELECT count(*) FROM dead_letters WHERE status = 'dead'`).Scan(&n)
			sn.dead[c] = n
		}
	}
	if err != nil {
		return nil, err
	}
	for i := range sn.payments {
		sn.payments[i].Email = sn.emails[sn.payments[i].Account]
	}
	return sn, nil
}

// each runs a query and calls f for every row.
func each(ctx context.Context, db *sql.DB, query string, f func(*sql.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%.60s…: %w", query, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
