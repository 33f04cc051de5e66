package auth

import (
	"context"
	"time"

	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/outbox"
)

// Names of the auth context's events (R-AUTH-6). account.created and account.updated are
// data-replication events carrying the account's whole state; account.role_changed and
// account.deactivated are business events (R-EVT-6).
const (
	EventAccountCreated     = "account.created"
	EventAccountUpdated     = "account.updated"
	EventAccountRoleChanged = "account.role_changed"
	EventAccountDeactivated = "account.deactivated"
)

// AccountData is the data of account.created v1 and account.updated v1.
type AccountData struct {
	AccountID string    `json:"accountId"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	FullName  string    `json:"fullName"`
	Role      string    `json:"role"`
	Active    bool      `json:"active"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// RoleChangedData is the data of account.role_changed v1.
type RoleChangedData struct {
	AccountID string    `json:"accountId"`
	OldRole   string    `json:"oldRole"`
	NewRole   string    `json:"newRole"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// DeactivatedData is the data of account.deactivated v1.
type DeactivatedData struct {
	AccountID string    `json:"accountId"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

func accountData(a Account) AccountData {
	return AccountData{
		AccountID: a.ID.String(), Username: a.Username, Email: a.Email, FullName: a.FullName,
		Role: string(a.Role), Active: a.Active, Version: a.Version, ChangedAt: a.UpdatedAt,
	}
}

// record builds an outbox record keyed by the account.
func record(ctx context.Context, a Account, name string, data any) (outbox.Record, error) {
	e, err := event.New(ctx, Producer, name, 1, a.UpdatedAt, data)
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Key: a.ID.String(), Envelope: e}, nil
}
