package auth

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
)

// SignUp creates a WORKER account for anyone and logs it in (R-AUTH-2).
func (s *Service) SignUp(ctx context.Context, n NewAccount) (Session, error) {
	n.Role = identity.Worker
	a, err := s.create(ctx, n)
	if err != nil {
		return Session{}, err
	}
	return s.session(a)
}

// CreateAccount creates an account with any role; ADMIN only (R-AUTH-2).
func (s *Service) CreateAccount(ctx context.Context, actor identity.Actor, n NewAccount) (Account, error) {
	if !actor.Is(identity.Admin) {
		return Account{}, errs.E(errs.Forbidden, "only an admin can create accounts")
	}
	return s.create(ctx, n)
}

func (s *Service) create(ctx context.Context, n NewAccount) (Account, error) {
	if err := n.Validate(); err != nil {
		return Account{}, err
	}
	hash, err := hashPassword(s.argon2, n.Password)
	if err != nil {
		return Account{}, err
	}
	now := s.now().UTC()
	var out Account
	err = s.inTx(ctx, func(tx *authdb.Tx) error {
		a, err := tx.Account.Create().
			SetUsername(n.Username).SetEmail(n.Email).SetFullName(n.FullName).
			SetRole(account.Role(n.Role)).SetPasswordHash(hash).
			SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if authdb.IsConstraintError(err) {
			return errs.InvalidField("username", "the username %q is taken", n.Username)
		}
		if err != nil {
			return fmt.Errorf("auth: creating account: %w", err)
		}
		out = toAccount(a)
		rec, err := record(ctx, out, EventAccountCreated, accountData(out))
		if err != nil {
			return err
		}
		return s.outbox.Append(ctx, tx, rec)
	})
	if err != nil {
		return Account{}, err
	}
	s.notify()
	s.log.InfoContext(ctx, "account created", "account", out.ID, "username", out.Username, "role", out.Role)
	return out, nil
}

// ChangeRole changes an account's role; ADMIN only, not the admin's own (R-AUTH-2).
func (s *Service) ChangeRole(ctx context.Context, actor identity.Actor, id uuid.UUID, role identity.Role) (Account, error) {
	if !actor.Is(identity.Admin) {
		return Account{}, errs.E(errs.Forbidden, "only an admin can change roles")
	}
	if _, err := identity.ParseRole(string(role)); err != nil {
		return Account{}, errs.InvalidField("role", "role must be one of ADMIN, MANAGER, ACCOUNTANT, WORKER")
	}
	if id == actor.AccountID {
		return Account{}, errs.E(errs.Conflict, "an admin cannot change their own role")
	}
	return s.update(ctx, id, func(a *Account) []eventOut {
		if a.Role == role {
			return nil
		}
		old := a.Role
		a.Role = role
		return []eventOut{{EventAccountRoleChanged, RoleChangedData{
			AccountID: a.ID.String(), OldRole: string(old), NewRole: string(role), Version: a.Version, ChangedAt: a.UpdatedAt,
		}}}
	})
}

// Deactivate deactivates an account; ADMIN only, not the admin's own (R-AUTH-2, R-AUTH-5).
// Deactivating an inactive account changes nothing.
func (s *Service) Deactivate(ctx context.Context, actor identity.Actor, id uuid.UUID) (Account, error) {
	if !actor.Is(identity.Admin) {
		return Account{}, errs.E(errs.Forbidden, "only an admin can deactivate accounts")
	}
	if id == actor.AccountID {
		return Account{}, errs.E(errs.Conflict, "an admin cannot deactivate their own account")
	}
	return s.update(ctx, id, func(a *Account) []eventOut {
		if !a.Active {
			return nil
		}
		a.Active = false
		return []eventOut{{EventAccountDeactivated, DeactivatedData{
			AccountID: a.ID.String(), Version: a.Version, ChangedAt: a.UpdatedAt,
		}}}
	})
}

type eventOut struct {
	name string
	data any
}

// update applies change to the locked account; when change reports business events, the new
// version is stored with an account.updated replication event and those events.
func (s *Service) update(ctx context.Context, id uuid.UUID, change func(a *Account) []eventOut) (Account, error) {
	var out Account
	changed := false
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		row, err := tx.Account.Query().Where(account.PublicID(id)).Only(ctx)
		if authdb.IsNotFound(err) {
			return notFound(id)
		}
		if err != nil {
			return fmt.Errorf("auth: loading account: %w", err)
		}
		a := toAccount(row)
		a.Version++
		a.UpdatedAt = s.now().UTC()
		evs := change(&a)
		if len(evs) == 0 {
			out = toAccount(row)
			return nil
		}
		// Optimistic: the version guards against a concurrent change of the same account.
		n, err := tx.Account.Update().Where(account.ID(row.ID), account.Version(row.Version)).
			SetRole(account.Role(a.Role)).SetActive(a.Active).
			SetVersion(a.Version).SetUpdatedAt(a.UpdatedAt).Save(ctx)
		if err != nil {
			return fmt.Errorf("auth: updating account: %w", err)
		}
		if n == 0 {
			return errs.E(errs.Conflict, "the account was changed at the same time; try again")
		}
		recs := make([]outbox.Record, 0, len(evs)+1)
		rec, err := record(ctx, a, EventAccountUpdated, accountData(a))
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		for _, e := range evs {
			rec, err := record(ctx, a, e.name, e.data)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		out, changed = a, true
		return s.outbox.Append(ctx, tx, recs...)
	})
	if err != nil {
		return Account{}, err
	}
	if changed {
		s.notify()
		s.log.InfoContext(ctx, "account changed", "account", out.ID, "role", out.Role, "active", out.Active, "version", out.Version)
	}
	return out, nil
}

// Get returns an account by public id; any authenticated actor may read accounts (tasks show
// their assignee).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (Account, error) {
	a, err := s.client.Account.Query().Where(account.PublicID(id)).Only(ctx)
	if authdb.IsNotFound(err) {
		return Account{}, notFound(id)
	}
	if err != nil {
		return Account{}, fmt.Errorf("auth: loading account: %w", err)
	}
	return toAccount(a), nil
}

// List returns a page of accounts in creation order, optionally of one role; ADMIN only.
func (s *Service) List(ctx context.Context, actor identity.Actor, req page.Request, role *identity.Role) (page.Page[Account], error) {
	if !actor.Is(identity.Admin) {
		return page.Page[Account]{}, errs.E(errs.Forbidden, "only an admin can list accounts")
	}
	q := s.client.Account.Query()
	if role != nil {
		q = q.Where(account.RoleEQ(account.Role(*role)))
	}
	total, err := q.Clone().Count(ctx)
	if err != nil {
		return page.Page[Account]{}, fmt.Errorf("auth: counting accounts: %w", err)
	}
	rows, err := q.Where(account.IDGT(int(req.After))).Order(authdb.Asc(account.FieldID)).Limit(req.First + 1).All(ctx)
	if err != nil {
		return page.Page[Account]{}, fmt.Errorf("auth: listing accounts: %w", err)
	}
	p := page.Page[Account]{TotalCount: total, HasPrev: req.After > 0}
	if len(rows) > req.First {
		rows, p.HasNext = rows[:req.First], true
	}
	for _, r := range rows {
		p.Items = append(p.Items, toAccount(r))
		p.Keys = append(p.Keys, int64(r.ID))
	}
	return p, nil
}

// GetMany returns the accounts with the ids, in the order asked, with a NotFound error at the
// index of an unknown id; one query however many ids (for dataloaders).
func (s *Service) GetMany(ctx context.Context, ids []uuid.UUID) ([]Account, []error) {
	rows, err := s.client.Account.Query().Where(account.PublicIDIn(ids...)).All(ctx)
	out, errs := make([]Account, len(ids)), make([]error, len(ids))
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("auth: loading accounts: %w", err)
		}
		return out, errs
	}
	byID := make(map[uuid.UUID]*authdb.Account, len(rows))
	for _, r := range rows {
		byID[r.PublicID] = r
	}
	for i, id := range ids {
		if r, ok := byID[id]; ok {
			out[i] = toAccount(r)
		} else {
			errs[i] = notFound(id)
		}
	}
	return out, errs
}

func notFound(id uuid.UUID) error { return errs.E(errs.NotFound, "no account with id %s", id) }
