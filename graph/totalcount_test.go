package graph_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/uberpopug/ates/services/identity"
)

// TestTotalCountOnlyWhenSelected: R-API-5, R-TASK-1, R-TASK-6 — every connection counts its
// list only when the client selects totalCount (directly or through a fragment); the task
// lists, filtered or not, read their totals from the counters and a ledger's entries from its
// account's entry count (R-ACC-3), never counting rows; the totals are right.
func TestTotalCountOnlyWhenSelected(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, on GatewayOption) {
		g := MustGateway(t, on)
		w := g.MustUser(t, "kiwi", identity.Worker)
		g.SyncReplica(t)
		var ids []string
		for i := range 3 {
			var out struct{ CreateTask struct{ ID string } }
			g.Query(t, w.Token, `mutation($t: String!) { createTask(input: {title: $t, description: "d"}) { id } }`,
				map[string]any{"t": fmt.Sprintf("task %d", i)}).MustOK(t, &out)
			ids = append(ids, out.CreateTask.ID)
		}
		g.Query(t, w.Token, completeTaskMutation, map[string]any{"id": ids[0]}).MustOK(t, nil)
		g.PriceTasks(t)

		cases := []struct {
			name, field string
			token       string
			log         *QueryLog
			counts      bool // counts rows when totalCount is selected (else reads counters)
			total       int
		}{
			{"tasks", `tasks(first: 1)`, w.Token, g.TasksQueries, false, 3},
			{"open tasks", `tasks(first: 1, status: OPEN)`, w.Token, g.TasksQueries, false, 2},
			{"the popug's done tasks", fmt.Sprintf(`tasks(first: 1, status: DONE, assigneeId: %q)`, w.ID), w.Token, g.TasksQueries, false, 1},
			{"myTasks", `myTasks(first: 1)`, w.Token, g.TasksQueries, false, 3},
			{"searchTasks", `searchTasks(search: "TASK", first: 1)`, w.Token, g.TasksQueries, true, 3},
			{"accounts", `accounts(first: 1)`, g.AdminToken, g.AuthQueries, true, 2},
			{"searchAccounts", `searchAccounts(search: "kiwi", first: 1)`, g.AdminToken, g.AuthQueries, true, 1},
			{"billingAccounts", `billingAccounts(first: 1)`, g.AdminToken, g.AccountingQueries, true, 1},
			{"billingAccount.entries", fmt.Sprintf(`billingAccount(accountId: %q) { entries(first: 1)`, w.ID), g.AdminToken, g.AccountingQueries, false, 4},
		}
		for _, c := range cases {
			query := func(selection string) (string, []string) {
				q := "{ " + c.field + " { " + selection + " } }"
				if strings.HasPrefix(c.field, "billingAccount(") {
					q += " }"
				}
				q += " fragment F on " + connectionType(c.name) + " { totalCount }"
				before := c.log.Len()
				res := g.Query(t, c.token, q, nil)
				res.MustOK(t, nil)
				var counts []string
				for _, s := range c.log.Since(before) {
					if strings.Contains(strings.ToUpper(s), "COUNT(") {
						counts = append(counts, s)
					}
				}
				return res.Body, counts
			}
			if body, counts := query("edges { cursor } ...F @skip(if: true)"); len(counts) != 0 {
				t.Errorf("%s without totalCount counted: %v (%s)", c.name, counts, body)
			}
			for _, sel := range []string{"totalCount edges { cursor } ...F @skip(if: true)", "edges { cursor } ...F"} {
				body, counts := query(sel)
				if c.counts != (len(counts) > 0) {
					t.Errorf("%s with %q: count queries %v", c.name, sel, counts)
				}
				if want := fmt.Sprintf(`"totalCount":%d`, c.total); !strings.Contains(body, want) {
					t.Errorf("%s with %q = %s, want %s", c.name, sel, body, want)
				}
			}
		}
	})
}

// connectionType is the connection type a case of TestTotalCountOnlyWhenSelected lists.
func connectionType(name string) string {
	switch {
	case strings.Contains(name, "ccounts") && strings.HasPrefix(name, "billing"):
		return "BillingAccountConnection"
	case strings.Contains(name, "ccounts"):
		return "AccountConnection"
	case strings.Contains(name, "entries"):
		return "LedgerEntryConnection"
	default:
		return "TaskConnection"
	}
}
