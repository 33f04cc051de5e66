package auth

import (
	"context"

	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/outbox"
)

// Names of the auth context's events (see services/contract).
const (
	EventAccountCreated     = contract.AccountCreated
	EventAccountUpdated     = contract.AccountUpdated
	EventAccountRoleChanged = contract.AccountRoleChanged
	EventAccountDeactivated = contract.AccountDeactivated
	EventAccountReactivated = contract.AccountReactivated
	EventSessionEnded       = contract.SessionEnded
)

// Event data types of the auth context (see services/contract).
type (
	AccountData      = contract.Account
	RoleChangedData  = contract.AccountRoleChangedV1
	DeactivatedData  = contract.AccountDeactivatedV1
	ReactivatedData  = contract.AccountReactivatedV1
	SessionEndedData = contract.SessionEndedV1
)

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
