package graph

import (
	"time"

	"github.com/uberpopug/ates/graph/generated"
	"github.com/uberpopug/ates/graph/model"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/page"
)

// What a field costs in the query complexity of R-SEC-2, beyond one per field: a page costs its
// elements times what each selects (pages nest: a page of accounts each with a page of
// entries), a series of days its days, and a resolver that does real work costs that work.
const (
	// hashCost is a field that hashes a beak print (argon2id: memory-hard and slow by design).
	hashCost = 200
	// bulkCost is a field that writes in bulk: a shuffle of every open task, a close of every
	// account.
	bulkCost = 500
	// searchCost is a substring search over a context's table.
	searchCost = 50
	// maxDays is the longest day range a field accepts (docs/decisions.md).
	maxDays = 400
)

// listOf is the cost of a list of first elements (page.DefaultFirst when unset), each costing
// child.
func listOf(child int, first *int) int {
	n := page.DefaultFirst
	if first != nil {
		n = min(max(*first, 0), page.MaxFirst)
	}
	return 1 + n*max(child, 1)
}

// daysOf is the number of days in [from, to], at least 1 and at most maxDays: what a field
// answering one element per day returns.
func daysOf(from, to calendar.Date) int {
	d := int(to.Start(time.UTC).Sub(from.Start(time.UTC)).Hours()/24) + 1
	return min(max(d, 1), maxDays)
}

// series is the cost of a field answering one element per day, week or month of a range, all
// read with one query: each element costs one, and what an element selects is counted once —
// its fields are plain values or loaded in batches, never lists of their own.
func series(child, elements int) int { return 1 + elements + max(child, 1) }

// periodsOf is how many days, ISO weeks or months touch [from, to].
func periodsOf(from, to calendar.Date, p model.Period) int {
	days := daysOf(from, to)
	switch p {
	case model.PeriodWeek:
		return days/7 + 2
	case model.PeriodMonth:
		return days/28 + 2
	}
	return days
}

// complexity is the cost model gqlgen adds up before executing an operation; one counts for
// every field not listed.
func complexity() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	c.Query.Accounts = func(child int, first *int, _ *string, _ *model.Role) int { return listOf(child, first) }
	c.Query.Tasks = func(child int, first *int, _ *string, _ *model.TaskStatus, _ *string) int {
		return listOf(child, first)
	}
	c.Query.MyTasks = func(child int, first *int, _ *string, _ *model.TaskStatus) int { return listOf(child, first) }
	c.Query.BillingAccounts = func(child int, first *int, _ *string) int { return listOf(child, first) }
	c.Query.ManagementEarnings = func(child int, from, to calendar.Date) int { return series(child, daysOf(from, to)) }
	c.Query.MostExpensiveTasks = func(child int, from, to calendar.Date, p model.Period) int {
		return series(child, periodsOf(from, to, p))
	}
	c.BillingAccount.Entries = func(child int, first *int, _ *string, _ *calendar.Date) int { return listOf(child, first) }
	c.BillingAccount.Payments = func(child int, first *int) int { return listOf(child, first) }
	c.BillingAccount.Days = func(child int, from, to calendar.Date) int { return series(child, daysOf(from, to)) }
	c.Mutation.Login = func(child int, _, _ string) int { return hashCost + child }
	c.Mutation.SignUp = func(child int, _ model.SignUpInput) int { return hashCost + child }
	c.Mutation.CreateAccount = func(child int, _ model.CreateAccountInput) int { return hashCost + child }
	c.Mutation.ShuffleTasks = func(child int) int { return bulkCost + child }
	c.Mutation.CloseBillingDay = func(child int) int { return bulkCost + child }
	return c
}
