package accounting

// Test hooks of the end-of-day close for the external tests (package accounting_test).

// CloseBatch is how many accounts one payout transaction pays.
const CloseBatch = closeBatch

// SetCloseBatch sets how many accounts one payout transaction of s's closes pays.
func SetCloseBatch(s *Service, n int) { s.closeBatch = n }

// CloseWorkers is how many payout batches of one close run at once on PostgreSQL.
const CloseWorkers = closeWorkers

// SetCloseWorkers sets how many payout batches of one of s's closes run at once on PostgreSQL.
func SetCloseWorkers(s *Service, n int) { s.closeWorkers = n }

// EmailBatch is how many payment emails one SendDueEmails call claims.
const EmailBatch = emailBatch

// EmailBackoff is the wait after the attempts-th failed attempt of a payment email.
var EmailBackoff = emailBackoff

// SetAfterCloseBatch installs f to run after each committed payout batch of s's closes; an
// error from f stops the close there, as a crash would (R-ACC-8). nil removes it. Not safe to
// call while a close of s runs.
func SetAfterCloseBatch(s *Service, f func(batch int) error) { s.afterCloseBatch = f }
