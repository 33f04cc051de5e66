package accounting

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/accountingdb/task"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/money"
)

// Price ranges of R-ACC-1, in whole dollars.
const (
	MinFee, MaxFee       = 10, 20
	MinReward, MaxReward = 20, 40
)

// Price is a task's fee and reward.
type Price struct {
	Fee    money.Cents
	Reward money.Cents
}

// drawPrice draws a price: fee uniform in [10, 20] dollars, reward uniform in [20, 40] dollars,
// independently of any popug (R-ACC-1).
func drawPrice(r Rand) Price {
	return Price{
		Fee:    money.Dollars(int64(MinFee + r.IntN(MaxFee-MinFee+1))),
		Reward: money.Dollars(int64(MinReward + r.IntN(MaxReward-MinReward+1))),
	}
}

// Prices returns the prices of the tasks with the ids, in the order asked, with a NotFound
// error at the index of a task accounting has not priced yet; one query however many ids (the
// gateway batches a page's Task.price through it, R-LIVE-2). Prices are visible to every
// authenticated employee, as the tasks they belong to are (R-TASK-1).
func (s *Service) Prices(ctx context.Context, ids []uuid.UUID) ([]Price, []error) {
	out, errList := make([]Price, len(ids)), make([]error, len(ids))
	rows, err := s.client.Task.Query().Where(task.PublicIDIn(ids...)).
		Select(task.FieldPublicID, task.FieldFee, task.FieldReward).All(ctx)
	if err != nil {
		for i := range errList {
			errList[i] = fmt.Errorf("accounting: loading prices: %w", err)
		}
		return out, errList
	}
	byID := make(map[uuid.UUID]Price, len(rows))
	for _, r := range rows {
		byID[r.PublicID] = Price{Fee: money.Cents(r.Fee), Reward: money.Cents(r.Reward)}
	}
	for i, id := range ids {
		if p, ok := byID[id]; ok {
			out[i] = p
		} else {
			errList[i] = errs.E(errs.NotFound, "task %s has no price yet", id)
		}
	}
	return out, errList
}
