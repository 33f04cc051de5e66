package auth

// SetHashHook makes the service's hasher call fn as every argon2id computation starts (+1) and
// ends (-1).
func SetHashHook(s *Service, fn func(delta int)) { s.hasher.onHash = fn }

// EndedSessions is how many ended sessions the revocations remember.
func EndedSessions(r *Revocations) int { return r.endedSessions() }

// MaxEndedSessions is the bound of remembered ended sessions.
const MaxEndedSessions = maxEndedSessions

// HashesWaiting is how many calls wait in the hasher's queue for a slot.
func HashesWaiting(s *Service) int64 { return s.hasher.waiting.Load() }
