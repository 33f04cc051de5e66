package storage

import (
	"context"
	"errors"
	"fmt"
)

// Tx is what every context's generated Ent transaction offers.
type Tx interface {
	Commit() error
	Rollback() error
}

// InTx runs fn in a transaction from begin: committed when fn returns nil (the commit's error
// is returned, never dropped), rolled back otherwise or when fn panics.
func InTx[T Tx](ctx context.Context, begin func(context.Context) (T, error), fn func(tx T) error) (err error) {
	tx, err := begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rolling back: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction: %w", err)
	}
	return nil
}
