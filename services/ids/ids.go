// Package ids makes the identifiers aTES stores: events, tasks, ledger entries and payments.
package ids

import "github.com/google/uuid"

// New returns a fresh UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.
// Ids made one after another sort in that order (google/uuid keeps them monotonic within a
// process), so a unique index over them grows at its right edge instead of touching a random
// page of the whole index per insert: fewer pages dirtied and written to the WAL when a
// shuffle or a close stores 100 000 events at once. The time an id shows is no secret: every
// record it names carries its own time anyway.
func New() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// NewString is New as a string.
func NewString() string { return New().String() }
