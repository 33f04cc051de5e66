package model

import (
	"time"

	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/money"
)

// BillingAccount is the GraphQL BillingAccount; account, entries, days and payments are
// resolved from AccountID.
type BillingAccount struct {
	AccountID   string      `json:"-"`
	Balance     money.Cents `json:"balance"`
	EarnedToday money.Cents `json:"earnedToday"`
}

// LedgerEntry is the GraphQL LedgerEntry; its task is resolved from TaskID by a dataloader.
type LedgerEntry struct {
	ID           string          `json:"id"`
	Type         LedgerEntryType `json:"type"`
	Amount       money.Cents     `json:"amount"`
	BalanceAfter money.Cents     `json:"balanceAfter"`
	Description  string          `json:"description"`
	TaskID       *string         `json:"-"`
	// FoundTask is the entry's task as the gateway found it when the change arrived, looked up
	// for a whole batch of pushes at once (graph.PublishBalanceChanges); nil: look it up.
	FoundTask  *Task         `json:"-"`
	OccurredAt time.Time     `json:"occurredAt"`
	Day        calendar.Date `json:"day"`
}
