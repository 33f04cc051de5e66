package outbox

// SelectQuery is the relay's read of the oldest unsent rows, for plan tests.
func (r *Relay) SelectQuery() (string, []any) { return r.selectQuery, r.selectArgs }
