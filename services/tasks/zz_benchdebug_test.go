package tasks_test

import (
	"context"
	"testing"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/services/storage"
)

func BenchmarkZZScratch(b *testing.B) {
	ctx := context.Background()
	db, err := storage.OpenPostgres(ctx, "postgres://postgres@127.0.0.1:5432/ates_bench_scratch?sslmode=disable")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := tasksdb.NewClient(tasksdb.Driver(db.Driver())).Schema.Create(ctx); err != nil {
		b.Fatal(err)
	}
	b.SkipNow()
}
