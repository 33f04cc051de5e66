package storage_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/testenv"
)

// TestOpenPostgresCreatesConcurrently: processes started together on an empty server all
// create the same missing database at the same moment (R-OPS-2, R-OPS-3): every one of them
// opens it, none fails with PostgreSQL's duplicate key on pg_database. Several rounds, since
// the losing side of the race is not the same every time.
func TestOpenPostgresCreatesConcurrently(t *testing.T) {
	admin := testenv.RequirePostgres(t)
	t.Parallel()
	adb, err := sql.Open("postgres", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adb.Close() }) // after the drops, registered later, run first
	const rounds, openers = 6, 6
	for round := range rounds {
		var b [6]byte
		_, _ = rand.Read(b[:])
		name := "ates_create_" + hex.EncodeToString(b[:])
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := adb.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
				t.Logf("dropping %s: %v", name, err)
			}
		})
		u, _ := url.Parse(admin)
		u.Path = "/" + name
		start := make(chan struct{})
		errs := make(chan error, openers)
		var wg sync.WaitGroup
		for range openers {
			wg.Go(func() {
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				db, err := storage.OpenPostgres(ctx, u.String())
				if err == nil {
					err = db.SQL.PingContext(ctx)
					db.Close()
				}
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: opening %s while others create it: %v", round, name, err)
			}
		}
	}
}
