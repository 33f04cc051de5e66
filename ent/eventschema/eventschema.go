// Package eventschema declares the tables of the event platform that every context's database
// holds: the transactional outbox, the processed-event inbox and the dead-letter store
// (R-EVT-2, R-EVT-4, R-EVT-5). Each context's Ent schema embeds these types, so Ent migrates the
// tables together with the context's own; services/outbox and services/inbox own the SQL.
package eventschema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Table names shared by the schema and the event platform's SQL.
const (
	OutboxTable     = "outbox_events"
	InboxTable      = "processed_events"
	DeadLetterTable = "dead_letters"
)

// OutboxEvent is an event committed with the state change that caused it, waiting to be relayed.
type OutboxEvent struct{ ent.Schema }

// Annotations names the table.
func (OutboxEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: OutboxTable}}
}

// Fields of the outbox row; payload is the whole validated envelope as JSON.
func (OutboxEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("event_id").Unique().Immutable(),
		field.String("name").Immutable(),
		field.Int("version").Immutable(),
		field.String("aggregate_key").Immutable(),
		field.Text("payload").Immutable(),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("sent_at").Optional().Nillable(),
	}
}

// UnsentIndex is the outbox's index of unsent rows.
const UnsentIndex = "outboxevent_unsent"

// Indexes: the relay reads unsent rows in id order. The index holds only the unsent rows (a
// partial index): a row leaves it once it is sent, and the sent history, kept in the table,
// never slows the relay's reads down. It replaces an index on sent_at over every row, which
// could not give unsent rows in id order (services/outbox's migration drops it).
func (OutboxEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("id").StorageKey(UnsentIndex).Annotations(entsql.IndexWhere("sent_at IS NULL")),
	}
}

// ProcessedEvent records that a consumer applied an event, in the consumer's own transaction.
type ProcessedEvent struct{ ent.Schema }

// Annotations names the table.
func (ProcessedEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: InboxTable}}
}

// Fields of the processed-event record.
func (ProcessedEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("consumer").Immutable(),
		field.String("event_id").Immutable(),
		field.Time("processed_at").Default(time.Now).Immutable(),
	}
}

// Indexes: one record per consumer and event.
func (ProcessedEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("consumer", "event_id").Unique()}
}

// DeadLetter keeps an event a consumer could not process, visible and re-drivable (R-EVT-2).
type DeadLetter struct{ ent.Schema }

// Annotations names the table.
func (DeadLetter) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Annotation{Table: DeadLetterTable}}
}

// Fields of the dead letter.
func (DeadLetter) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.String("consumer").Immutable(),
		field.String("event_id"),
		field.String("name"),
		field.Int("version"),
		field.Text("payload"),
		field.Text("error"),
		field.Int("attempts"),
		field.Enum("status").Values("dead", "redriven").Default("dead"),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("updated_at").Default(time.Now),
	}
}

// Indexes: one dead letter per consumer and event; listing by status.
func (DeadLetter) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("consumer", "event_id").Unique(),
		index.Fields("status"),
	}
}
