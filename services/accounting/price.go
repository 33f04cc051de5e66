package accounting

import "github.com/uberpopug/ates/services/money"

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
