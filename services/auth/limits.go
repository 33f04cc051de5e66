package auth

import (
	"context"
	"errors"
	"time"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/loginlimit"
)

// lockLimits creates the attempt's throttle records that are missing and locks all three, in
// key order, with one statement (each row of an INSERT … ON CONFLICT DO UPDATE is locked as it
// is reached; on SQLite the transaction holds the database's write lock anyway), then reads
// them. Two logins sharing records thus wait for each other in the same order and never
// deadlock (R-SEC-3).
func lockLimits(ctx context.Context, tx *authdb.Tx, keys limitKeys, now time.Time) (attemptState, error) {
	ks := keys.ordered()
	creates := make([]*authdb.LoginLimitCreate, len(ks))
	for i, k := range ks {
		creates[i] = tx.LoginLimit.Create().SetKey(k).SetFailures(0).SetWindowStartedAt(now).SetExpiresAt(now)
	}
	err := tx.LoginLimit.CreateBulk(creates...).OnConflictColumns(loginlimit.FieldKey).
		Update(func(u *authdb.LoginLimitUpsert) { u.AddFailures(0) }).Exec(ctx)
	if err != nil {
		return attemptState{}, errorf("locking login throttle records", err)
	}
	rows, err := tx.LoginLimit.Query().Where(loginlimit.KeyIn(ks...)).All(ctx)
	if err != nil {
		return attemptState{}, errorf("reading login throttle records", err)
	}
	var s attemptState
	for _, r := range rows {
		st := limitState{Failures: r.Failures, WindowStart: r.WindowStartedAt}
		if r.BlockedUntil != nil {
			st.BlockedUntil = *r.BlockedUntil
		}
		switch r.Key {
		case keys.pair:
			s.Pair = st
		case keys.client:
			s.Client = st
		case keys.user:
			s.User = st
		}
	}
	return s, nil
}

// writeLimits stores the records' new states: a record that no longer matters is deleted.
func (s *Service) writeLimits(ctx context.Context, tx *authdb.Tx, keys limitKeys, before, after attemptState, now time.Time) error {
	p := s.throttle
	for _, r := range []struct {
		key           string
		before, after limitState
		window        time.Duration
	}{
		{keys.client, before.Client, after.Client, p.ClientWindow},
		{keys.pair, before.Pair, after.Pair, p.PairWindow},
		{keys.user, before.User, after.User, p.UserWindow},
	} {
		if r.key == "" {
			continue
		}
		exp := expiry(r.after, r.window)
		if !exp.After(now) {
			if _, err := tx.LoginLimit.Delete().Where(loginlimit.Key(r.key)).Exec(ctx); err != nil {
				return errorf("clearing a login throttle record", err)
			}
			continue
		}
		if r.after == r.before {
			continue
		}
		u := tx.LoginLimit.Update().Where(loginlimit.Key(r.key)).
			SetFailures(r.after.Failures).SetWindowStartedAt(r.after.WindowStart).SetExpiresAt(exp)
		if r.after.BlockedUntil.IsZero() {
			u.ClearBlockedUntil()
		} else {
			u.SetBlockedUntil(r.after.BlockedUntil)
		}
		if _, err := u.Save(ctx); err != nil {
			return errorf("writing a login throttle record", err)
		}
	}
	return nil
}

// errRefused rolls back the transaction of a refused attempt: nothing is stored for it.
type errRefused struct{ wait time.Duration }

func (e errRefused) Error() string { return "login attempt refused" }

// countAttempt counts one attempt under keys before its beak print is checked (R-SEC-3): one
// short transaction locks the records, asks the policy, and stores what it decided. A refused
// attempt stores nothing and reports how long to wait.
func (s *Service) countAttempt(ctx context.Context, keys limitKeys) (wait time.Duration, err error) {
	now := s.now().UTC()
	err = s.inTx(ctx, func(tx *authdb.Tx) error {
		before, err := lockLimits(ctx, tx, keys, now)
		if err != nil {
			return err
		}
		after, wait, ok := s.throttle.admit(before, now)
		if !ok {
			return errRefused{wait: wait}
		}
		return s.writeLimits(ctx, tx, keys, before, after, now)
	})
	var r errRefused
	if errors.As(err, &r) {
		return r.wait, nil
	}
	return 0, err
}

// settleAttempt applies what an admitted attempt's outcome changes (ThrottlePolicy.succeeded or
// givenBack) inside tx.
func (s *Service) settleAttempt(ctx context.Context, tx *authdb.Tx, keys limitKeys, outcome func(attemptState) attemptState) error {
	now := s.now().UTC()
	before, err := lockLimits(ctx, tx, keys, now)
	if err != nil {
		return err
	}
	return s.writeLimits(ctx, tx, keys, before, outcome(before), now)
}

// purgeLimits deletes up to purgeBatch throttle records whose window and block are over.
func purgeLimits(ctx context.Context, c *authdb.Client, now time.Time) (int, error) {
	ids, err := c.LoginLimit.Query().Where(loginlimit.ExpiresAtLTE(now)).Limit(purgeBatch).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return c.LoginLimit.Delete().Where(loginlimit.IDIn(ids...), loginlimit.ExpiresAtLTE(now)).Exec(ctx)
}
