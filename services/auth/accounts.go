package auth

import (
	"context"
	"crypto/rand"
	"strings"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/authdb/account"
	"github.com/uberpopug/ates/ent/authdb/predicate"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/text"
)

// Why sessions ended with their account's change (sessions' end_reason; R-SESS-3).
const (
	endedPasswordChanged = "password_changed"
	endedPasswordReset   = "password_reset"
	endedRoleChanged     = "role_changed"
	endedDeactivated     = "deactivated"
)

// MaxSearchLen bounds Search's string (R-SEC-6).
const MaxSearchLen = 100

var searchRule = text.Rule{Max: MaxSearchLen, MayBeBlank: true}

// searchText is what Search looks in: username, full name and email, lower-cased, one a line.
func searchText(username, fullName, email string) string {
	return strings.ToLower(username + "\n" + fullName + "\n" + email)
}

// SignUp creates a WORKER account for anyone and logs it in: the session's access and refresh
// tokens (R-AUTH-2, R-SESS-1).
func (s *Service) SignUp(ctx context.Context, n NewAccount) (Session, error) {
	n.Role = identity.Worker
	a, err := s.create(ctx, n)
	if err != nil {
		return Session{}, err
	}
	return s.startSession(ctx, a, nil)
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
	hash, err := s.hasher.hash(ctx, "sign_up", n.Password)
	if err != nil {
		return Account{}, err
	}
	now := s.now().UTC()
	var out Account
	err = s.inTx(ctx, func(tx *authdb.Tx) error {
		a, err := tx.Account.Create().
			SetUsername(n.Username).SetEmail(n.Email).SetFullName(n.FullName).
			SetRole(account.Role(n.Role)).SetPasswordHash(hash).
			SetSearchText(searchText(n.Username, n.FullName, n.Email)).
			SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if authdb.IsConstraintError(err) {
			return errs.InvalidField("username", "the username %q is taken", n.Username)
		}
		if err != nil {
			return errorf("creating account", err)
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

// ChangeRole changes an account's role and ends its sessions; ADMIN only, not the admin's own
// (R-AUTH-2, R-SESS-3).
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
	return s.update(ctx, account.PublicID(id), id, func(c *change) {
		if c.a.Role == role {
			return
		}
		old := c.a.Role
		c.a.Role = role
		c.endSessions(endedRoleChanged, uuid.Nil)
		c.event(EventAccountRoleChanged, RoleChangedData{
			AccountID: c.a.ID.String(), OldRole: string(old), NewRole: string(role), Version: c.a.Version, ChangedAt: c.a.UpdatedAt,
		})
	})
}

// Deactivate deactivates an account and ends its sessions; ADMIN only, not the admin's own
// (R-AUTH-2, R-AUTH-5, R-SESS-3). Deactivating an inactive account changes nothing.
func (s *Service) Deactivate(ctx context.Context, actor identity.Actor, id uuid.UUID) (Account, error) {
	if !actor.Is(identity.Admin) {
		return Account{}, errs.E(errs.Forbidden, "only an admin can deactivate accounts")
	}
	if id == actor.AccountID {
		return Account{}, errs.E(errs.Conflict, "an admin cannot deactivate their own account")
	}
	return s.update(ctx, account.PublicID(id), id, func(c *change) {
		if !c.a.Active {
			return
		}
		c.a.Active = false
		c.endSessions(endedDeactivated, uuid.Nil)
		c.event(EventAccountDeactivated, DeactivatedData{AccountID: c.a.ID.String(), Version: c.a.Version, ChangedAt: c.a.UpdatedAt})
	})
}

// Reactivate makes a deactivated account active again; ADMIN only (R-AUTH-2, R-WEB-7). Its
// version moves on, so tokens issued before the deactivation stay refused; it logs in afresh.
// Reactivating an active account changes nothing.
func (s *Service) Reactivate(ctx context.Context, actor identity.Actor, id uuid.UUID) (Account, error) {
	if !actor.Is(identity.Admin) {
		return Account{}, errs.E(errs.Forbidden, "only an admin can reactivate accounts")
	}
	return s.update(ctx, account.PublicID(id), id, func(c *change) {
		if c.a.Active {
			return
		}
		c.a.Active = true
		c.event(EventAccountReactivated, ReactivatedData{AccountID: c.a.ID.String(), Version: c.a.Version, ChangedAt: c.a.UpdatedAt})
	})
}

// UpdateProfile changes the caller's own full name and email (nil: unchanged), validated as at
// sign-up (R-SEC-6); every offending field is reported. Replicas learn it from account.updated
// (R-AUTH-6). Values equal to the current ones change nothing.
func (s *Service) UpdateProfile(ctx context.Context, actor identity.Actor, fullName, email *string) (Account, error) {
	if actor.AccountID == uuid.Nil {
		return Account{}, errs.E(errs.Unauthenticated, "log in first")
	}
	var nameErr, emailErr *errs.Error
	if fullName != nil {
		nameErr = validateFullName(*fullName)
	}
	if email != nil {
		emailErr = validateEmail(*email)
	}
	if err := errs.InvalidFields(nameErr, emailErr); err != nil {
		return Account{}, err
	}
	return s.update(ctx, account.PublicID(actor.AccountID), actor.AccountID, func(c *change) {
		if fullName != nil && *fullName != c.a.FullName {
			c.a.FullName, c.changed = *fullName, true
		}
		if email != nil && *email != c.a.Email {
			c.a.Email, c.changed = *email, true
		}
	})
}

// ChangePassword changes the caller's beak print (R-SESS-3): the current one is checked
// through the hasher and throttled like a login (the session counts as the client), the new
// one validated; every other session of the account ends and the account's version moves on,
// so outstanding access tokens — the caller's too — are refused: the caller refreshes its
// session for a new one.
func (s *Service) ChangePassword(ctx context.Context, actor identity.Actor, sessionID uuid.UUID, current, newPassword string) error {
	if actor.AccountID == uuid.Nil {
		return errs.E(errs.Unauthenticated, "log in first")
	}
	if err := validatePassword("newPassword", newPassword); err != nil {
		return err
	}
	a, err := s.Get(ctx, actor.AccountID)
	if err != nil {
		return err
	}
	_, keys, err := s.checkBeakPrint(ctx, "change_password", a.Username, current, "s:"+sessionID.String())
	if e, ok := errs.As(err); ok && e.Code == errs.Unauthenticated {
		// The caller is logged in: a wrong or throttled current beak print is an input error.
		f := errs.InvalidField("currentPassword", "the current beak print is wrong")
		if e.Meta["retryAfter"] != nil {
			f = errs.InvalidField("currentPassword", "%s", e.Message)
			f.Meta = e.Meta
		}
		return f
	}
	if err != nil {
		return err
	}
	hash, err := s.hasher.hash(ctx, "change_password", newPassword)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, account.PublicID(actor.AccountID), actor.AccountID, func(c *change) {
		c.passwordHash = hash
		c.endSessions(endedPasswordChanged, sessionID)
		c.also = func(tx *authdb.Tx) error { return s.settleAttempt(ctx, tx, keys, s.throttle.succeeded) }
	})
	return err
}

// ResetPassword gives the account a generated beak print and ends all its sessions, for an
// operator who was asked to (R-SESS-3); it returns the new beak print to hand over. No actor:
// only a command on the server calls it.
func (s *Service) ResetPassword(ctx context.Context, username string) (newPassword string, err error) {
	if validateUsername(username) != nil {
		return "", errs.InvalidField("username", "username must be 3 to 32 characters of a-z, 0-9, '_', '.' or '-'")
	}
	newPassword = rand.Text()
	hash, err := s.hasher.hash(ctx, "reset_password", newPassword)
	if err != nil {
		return "", err
	}
	_, err = s.update(ctx, account.Username(username), uuid.Nil, func(c *change) {
		c.passwordHash = hash
		c.endSessions(endedPasswordReset, uuid.Nil)
	})
	if errs.Is(err, errs.NotFound) {
		return "", errs.E(errs.NotFound, "no account with username %q", username)
	}
	if err != nil {
		return "", err
	}
	s.log.WarnContext(ctx, "beak print reset by an operator; every session of the account ended", "username", username)
	return newPassword, nil
}

// change is what an update does to one locked account: the new state (version and time
// already moved on), and what else to store with it. Nothing is stored unless changed.
type change struct {
	a            *Account
	changed      bool
	events       []eventOut
	passwordHash string
	endReason    string
	keepSession  uuid.UUID
	also         func(tx *authdb.Tx) error
}

type eventOut struct {
	name string
	data any
}

func (c *change) event(name string, data any) {
	c.events = append(c.events, eventOut{name, data})
	c.changed = true
}

// endSessions ends every session of the account but keep (uuid.Nil: all).
func (c *change) endSessions(reason string, keep uuid.UUID) {
	c.endReason, c.keepSession, c.changed = reason, keep, true
}

// update applies fn to the locked account; when it changed anything, the new version is
// stored with an account.updated replication event and fn's business events, and the sessions
// fn ended end.
func (s *Service) update(ctx context.Context, which predicate.Account, id uuid.UUID, fn func(c *change)) (Account, error) {
	var out Account
	stored := false
	err := s.inTx(ctx, func(tx *authdb.Tx) error {
		row, err := tx.Account.Query().Where(which).Only(ctx)
		if authdb.IsNotFound(err) {
			return notFound(id)
		}
		if err != nil {
			return errorf("loading account", err)
		}
		a := toAccount(row)
		a.TokensFrom = tokensFrom(row.TokensFrom, row.Version) // before the version moves
		a.Version++
		a.UpdatedAt = s.now().UTC()
		c := &change{a: &a}
		fn(c)
		if c.passwordHash != "" {
			c.changed = true
		}
		if !c.changed {
			out = toAccount(row)
			return nil
		}
		if c.endReason != "" {
			// Every session ends: so do the access tokens issued before this version (R-SESS-3).
			// A change of name or email leaves them valid.
			a.TokensFrom = a.Version
		}
		// Optimistic: the version guards against a concurrent change of the same account.
		u := tx.Account.Update().Where(account.ID(row.ID), account.Version(row.Version)).
			SetRole(account.Role(a.Role)).SetActive(a.Active).SetFullName(a.FullName).SetEmail(a.Email).
			SetSearchText(searchText(a.Username, a.FullName, a.Email)).
			SetVersion(a.Version).SetTokensFrom(a.TokensFrom).SetUpdatedAt(a.UpdatedAt)
		if c.passwordHash != "" {
			u.SetPasswordHash(c.passwordHash)
		}
		n, err := u.Save(ctx)
		if err != nil {
			return errorf("updating account", err)
		}
		if n == 0 {
			return errs.E(errs.Conflict, "the account was changed at the same time; try again")
		}
		if c.endReason != "" {
			if err := endAccountSessions(ctx, tx, a.ID, c.keepSession, c.endReason, a.UpdatedAt); err != nil {
				return err
			}
		}
		if c.also != nil {
			if err := c.also(tx); err != nil {
				return err
			}
		}
		recs := make([]outbox.Record, 0, len(c.events)+1)
		rec, err := record(ctx, a, EventAccountUpdated, accountData(a))
		if err != nil {
			return err
		}
		recs = append(recs, rec)
		for _, e := range c.events {
			rec, err := record(ctx, a, e.name, e.data)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		out, stored = a, true
		return s.outbox.Append(ctx, tx, recs...)
	})
	if err != nil {
		return Account{}, err
	}
	if stored {
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
		return Account{}, errorf("loading account", err)
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
	return accountPage(ctx, q, req)
}

// Search returns a page of the accounts whose username, full name or email contains search,
// case-insensitively (Unicode: "попуг" finds "Попугай"; '%', '_' and '\' are plain
// characters), in creation order with List's cursors; ADMIN only (R-WEB-7). An empty search
// finds every account. On PostgreSQL a trigram index serves it (Migrate).
func (s *Service) Search(ctx context.Context, actor identity.Actor, search string, req page.Request) (page.Page[Account], error) {
	if !actor.Is(identity.Admin) {
		return page.Page[Account]{}, errs.E(errs.Forbidden, "only an admin can search accounts")
	}
	if e := text.Field("search", "search", search, searchRule); e != nil {
		return page.Page[Account]{}, e
	}
	return accountPage(ctx, s.client.Account.Query().Where(account.SearchTextContains(strings.ToLower(search))), req)
}

// accountPage is one page of q's accounts in id order after the cursor, with the total.
func accountPage(ctx context.Context, q *authdb.AccountQuery, req page.Request) (page.Page[Account], error) {
	total, err := page.Total(req, func() (int, error) { return q.Clone().Count(ctx) })
	if err != nil {
		return page.Page[Account]{}, errorf("counting accounts", err)
	}
	rows, err := q.Where(account.IDGT(int(req.After))).Order(authdb.Asc(account.FieldID)).Limit(req.First + 1).All(ctx)
	if err != nil {
		return page.Page[Account]{}, errorf("listing accounts", err)
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
	out, errList := make([]Account, len(ids)), make([]error, len(ids))
	if err != nil {
		for i := range errList {
			errList[i] = errorf("loading accounts", err)
		}
		return out, errList
	}
	byID := make(map[uuid.UUID]*authdb.Account, len(rows))
	for _, r := range rows {
		byID[r.PublicID] = r
	}
	for i, id := range ids {
		if r, ok := byID[id]; ok {
			out[i] = toAccount(r)
		} else {
			errList[i] = notFound(id)
		}
	}
	return out, errList
}

func notFound(id uuid.UUID) error { return errs.E(errs.NotFound, "no account with id %s", id) }
