package schema

import "github.com/uberpopug/ates/ent/eventschema"

// OutboxEvent is the auth context's transactional outbox (R-EVT-4).
type OutboxEvent struct{ eventschema.OutboxEvent }

// ProcessedEvent is the auth context's inbox of applied events (R-EVT-5).
type ProcessedEvent struct{ eventschema.ProcessedEvent }

// DeadLetter is the auth context's dead-letter store (R-EVT-2).
type DeadLetter struct{ eventschema.DeadLetter }
