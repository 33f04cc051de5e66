package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/inbox"
	"github.com/uberpopug/ates/services/storage"
)

func newRequestID() string { return uuid.NewString() }

// redriver re-processes a context consumer's dead letters.
type redriver interface {
	Redrive(ctx context.Context, id int64) error
	RedriveAll(ctx context.Context) (int, error)
}

// runDeadLetters lists or re-drives dead letters (R-EVT-2):
//
//	ates deadletters list [-context NAME] [-status dead|redriven|all]
//	ates deadletters redrive -context NAME (-id N | -all)
func runDeadLetters(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("deadletters: want list or redrive")
	}
	fs := flag.NewFlagSet("deadletters "+args[0], flag.ContinueOnError)
	fs.SetOutput(stdout)
	ctxName := fs.String("context", "", "context whose dead letters to use (default: all for list)")
	status := fs.String("status", "dead", "list: dead, redriven or all")
	id := fs.Int64("id", 0, "redrive: the dead letter's id")
	all := fs.Bool("all", false, "redrive: every dead letter of the context")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a, err := openApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	switch args[0] {
	case "list":
		names := Contexts
		if *ctxName != "" {
			names = []string{*ctxName}
		}
		st := *status
		if st == "all" {
			st = ""
		}
		return listDeadLetters(ctx, a.dbs, names, st, stdout)
	case "redrive":
		r, ok := a.redrivers()[*ctxName]
		if !ok {
			return fmt.Errorf("deadletters redrive: context %q has no event consumer", *ctxName)
		}
		switch {
		case *all:
			n, err := r.RedriveAll(ctx)
			fmt.Fprintf(stdout, "redriven: %d\n", n)
			return err
		case *id > 0:
			if err := r.Redrive(ctx, *id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "redriven: %d\n", *id)
			return nil
		default:
			return errors.New("deadletters redrive: give -id N or -all")
		}
	default:
		return fmt.Errorf("deadletters: unknown action %q (want list or redrive)", args[0])
	}
}

func listDeadLetters(ctx context.Context, dbs map[string]*storage.DB, names []string, status string, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTEXT\tID\tCONSUMER\tEVENT\tNAME\tATTEMPTS\tSTATUS\tERROR")
	for _, name := range names {
		db, ok := dbs[name]
		if !ok {
			return fmt.Errorf("unknown context %q", name)
		}
		letters, err := inbox.ListDeadLetters(ctx, db, status)
		if err != nil {
			return err
		}
		for _, l := range letters {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s v%s\t%d\t%s\t%s\n", name, l.ID, l.Consumer, l.EventID, l.Name, strconv.Itoa(l.Version), l.Attempts, l.Status, l.Error)
		}
	}
	return tw.Flush()
}
