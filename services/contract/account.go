package contract

import "time"

// Account events, produced by auth (R-AUTH-6). account.created and account.updated are
// data-replication events carrying the account's whole state; account.role_changed,
// account.deactivated and account.reactivated are business events (R-EVT-6). session.ended
// tells gateways to refuse the access tokens of a session that ended (R-SESS-2).
const (
	AccountCreated     = "account.created"
	AccountUpdated     = "account.updated"
	AccountRoleChanged = "account.role_changed"
	AccountDeactivated = "account.deactivated"
	AccountReactivated = "account.reactivated"
	SessionEnded       = "session.ended"
)

// Account is the data of account.created v1 and account.updated v1: the account after the
// change. Version grows with every change, so replicas can ignore stale events.
type Account struct {
	AccountID string    `json:"accountId"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	FullName  string    `json:"fullName"`
	Role      string    `json:"role"`
	Active    bool      `json:"active"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// AccountRoleChangedV1 is the data of account.role_changed v1.
type AccountRoleChangedV1 struct {
	AccountID string    `json:"accountId"`
	OldRole   string    `json:"oldRole"`
	NewRole   string    `json:"newRole"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// AccountDeactivatedV1 is the data of account.deactivated v1.
type AccountDeactivatedV1 struct {
	AccountID string    `json:"accountId"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// AccountReactivatedV1 is the data of account.reactivated v1: an admin made a deactivated
// account active again.
type AccountReactivatedV1 struct {
	AccountID string    `json:"accountId"`
	Version   int64     `json:"version"`
	ChangedAt time.Time `json:"changedAt"`
}

// Why a session ended (SessionEndedV1.Reason).
const (
	SessionEndedLogout   = "logout"
	SessionEndedReused   = "reused"
	SessionEndedInactive = "account_inactive"
)

// SessionEndedV1 is the data of session.ended v1: the session's refresh tokens no longer work,
// and its access tokens, all expiring by TokensExpireBy, are to be refused (R-SESS-2).
type SessionEndedV1 struct {
	SessionID      string    `json:"sessionId"`
	AccountID      string    `json:"accountId"`
	Reason         string    `json:"reason"`
	EndedAt        time.Time `json:"endedAt"`
	TokensExpireBy time.Time `json:"tokensExpireBy"`
}
