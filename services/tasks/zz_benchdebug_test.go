package tasks_test

import (
	"context"
	"fmt"
	"testing"

	"entgo.io/ent/dialect"
)

func BenchmarkZZSQLitePlan(b *testing.B) {
	ctx := context.Background()
	_, db, _ := benchService(b, dialect.SQLite)
	benchInsertOpenTasks(b, db, 1000)
	for _, q := range []string{
		"EXPLAIN QUERY PLAN UPDATE tasks SET assignee_id = v.column2 FROM (VALUES (1,'a'),(2,'b')) AS v WHERE tasks.id = v.column1 AND tasks.status = 'OPEN' RETURNING tasks.id",
		"EXPLAIN QUERY PLAN SELECT id, public_id, assignee_id FROM tasks WHERE status = 'OPEN' AND id > 5 ORDER BY id LIMIT 5000",
		"EXPLAIN QUERY PLAN SELECT public_id FROM accounts WHERE active AND role NOT IN ('ADMIN','MANAGER') ORDER BY id LIMIT 1 OFFSET 3",
	} {
		rows, err := db.SQL.QueryContext(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			fmt.Println(vals...)
		}
		rows.Close()
		fmt.Println("---")
	}
	b.SkipNow()
}
