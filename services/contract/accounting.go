package contract

import "time"

// Accounting events. task.priced is a business event for analytics (R-ACC-1); balance.changed
// carries every applied ledger entry with the new balance (R-ACC-10, analytics).
const (
	TaskPriced     = "task.priced"
	BalanceChanged = "balance.changed"
)

// Ledger entry types (R-ACC-3).
const (
	EntryFee    = "FEE"
	EntryReward = "REWARD"
	EntryPayout = "PAYOUT"
)

// TaskPricedV1 is the data of task.priced v1: the task's price, set once. Amounts are cents.
type TaskPricedV1 struct {
	TaskID   string    `json:"taskId"`
	Fee      int64     `json:"fee"`
	Reward   int64     `json:"reward"`
	PricedAt time.Time `json:"pricedAt"`
}

// BalanceChangedV1 is the data of balance.changed v1: one ledger entry and the balance after it.
// Amounts are signed cents; day is the entry's business day, YYYY-MM-DD. Sequence orders one
// account's entries as the ledger applied them (balanceAfter chains in that order), whatever
// order the events arrive in.
type BalanceChangedV1 struct {
	EntryID      string    `json:"entryId"`
	Sequence     int64     `json:"sequence"`
	AccountID    string    `json:"accountId"`
	Type         string    `json:"type"`
	Amount       int64     `json:"amount"`
	BalanceAfter int64     `json:"balanceAfter"`
	TaskID       *string   `json:"taskId"`
	Description  string    `json:"description"`
	OccurredAt   time.Time `json:"occurredAt"`
	Day          string    `json:"day"`
}

// End-of-day events (R-ACC-8).
const (
	PaymentMade = "payment.made"
	DayClosed   = "day.closed"
)

// PaymentMadeV1 is the data of payment.made v1: a positive balance paid out at a close.
type PaymentMadeV1 struct {
	PaymentID string    `json:"paymentId"`
	AccountID string    `json:"accountId"`
	Amount    int64     `json:"amount"`
	Day       string    `json:"day"`
	PaidAt    time.Time `json:"paidAt"`
}

// DayClosedV1 is the data of day.closed v1: a close finished; scheduled tells the end-of-day
// close from a manual one.
type DayClosedV1 struct {
	Day          string    `json:"day"`
	Scheduled    bool      `json:"scheduled"`
	PaidAccounts int       `json:"paidAccounts"`
	TotalPaid    int64     `json:"totalPaid"`
	ClosedAt     time.Time `json:"closedAt"`
}
