package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// DailyTop is the most expensive task completed on one business day (R-AN-3): the completed,
// priced task with the highest reward, ties going to the earliest completion, then to the
// smallest task id. It is a running maximum kept by the consumer, so the most expensive task of
// any range is the best of at most one row per day of the range, whatever the number of tasks.
type DailyTop struct{ ent.Schema }

// Fields of the day's top task; reward and completed_at are copied from the task for ordering.
func (DailyTop) Fields() []ent.Field {
	return []ent.Field{
		field.String("day").Unique().Immutable(),
		field.UUID("task_id", uuidType()),
		field.Int64("reward"),
		field.Time("completed_at"),
	}
}
