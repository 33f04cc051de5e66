package chaos

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// window is a stretch of the run the report counts in: a fault, from its start to the next
// one's.
type window struct {
	name      string
	from, to  time.Time
	held      time.Duration
	flow, api string // recovery
	run       *faultRun
}

// report writes the run's table — per fault: how long it lasted, when events and requests
// flowed again after it, the longest stretch without a push meanwhile, pushes and RESYNCs
// received, UNAVAILABLE answers and unanswered requests, and the violations of changes made
// meanwhile — then the invariants.
func report(w io.Writer, rec *recorder, c *checks, loadStart, loadEnd time.Time, runs []*faultRun, extra []string) {
	var windows []window
	first := loadEnd
	if len(runs) > 0 {
		first = runs[0].Start
	}
	windows = append(windows, window{name: "no fault (warm-up)", from: loadStart, to: first})
	for i, r := range runs {
		to := loadEnd
		if i+1 < len(runs) {
			to = runs[i+1].Start
		}
		windows = append(windows, window{name: r.Name, from: r.Start, to: to, held: r.End.Sub(r.Start),
			flow: since(r.End, r.Recovered), run: r})
		if at, ok := rec.firstAck(r.End); ok {
			windows[len(windows)-1].api = since(r.End, at)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\tlasted\tflowing again\trequests again\tlongest push gap\tpushes\tRESYNCs\tUNAVAILABLE\tno answer\tviolations\t")
	total := map[string]int{}
	for _, win := range windows {
		in := func(t time.Time) bool { return !t.Before(win.from) && t.Before(win.to) }
		var pushes, resyncs, unavailable, noAnswer, violations int
		for _, p := range rec.pushes {
			if in(p.At) {
				if p.Resync {
					resyncs++
				} else {
					pushes++
				}
			}
		}
		for _, a := range rec.answers {
			if in(a.At) && a.Code == "UNAVAILABLE" {
				unavailable++
			}
		}
		for _, m := range rec.mutations {
			if in(m.Start) && m.Outcome == unknown {
				noAnswer++
			}
		}
		for _, v := range c.list {
			if in(v.At) {
				violations++
			}
		}
		held, flow, api, gap, name := "—", "—", "—", "—", win.name
		if win.api != "" {
			api = win.api
		}
		if r := win.run; r != nil {
			held, flow = fmt.Sprintf("%.1fs", win.held.Seconds()), win.flow
			gap = fmt.Sprintf("%.1fs", longestGap(rec.pushes, r.Start, r.Recovered, r.Gateway).Seconds())
			if r.Err != "" {
				name += " (" + r.Err + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", name, held, flow, api, gap, pushes, resyncs, unavailable, noAnswer, violations)
		total["pushes"] += pushes
		total["resyncs"] += resyncs
		total["unavailable"] += unavailable
		total["noAnswer"] += noAnswer
		total["violations"] += violations
	}
	fmt.Fprintf(tw, "all (%.0fs of load)\t\t\t\t\t%d\t%d\t%d\t%d\t%d\t\n", loadEnd.Sub(loadStart).Seconds(),
		total["pushes"], total["resyncs"], total["unavailable"], total["noAnswer"], total["violations"])
	tw.Flush()

	acks := map[string]int{}
	for _, m := range rec.mutations {
		if m.Outcome == acked {
			acks[m.Op]++
		}
	}
	fmt.Fprintf(w, "\nacknowledged: %d createTask, %d completeTask, %d shuffleTasks, %d closeBillingDay; %d sessions of live subscriptions\n\n",
		acks["createTask"], acks["completeTask"], acks["shuffleTasks"], acks["closeBillingDay"], len(rec.sessions))

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "invariant\tviolations\t")
	for _, inv := range invariants {
		fmt.Fprintf(tw, "%s\t%d\t\n", inv, c.count(inv))
	}
	tw.Flush()
	for _, inv := range invariants {
		n := 0
		for _, v := range c.list {
			if v.Invariant == inv && n < 5 {
				if n == 0 {
					fmt.Fprintf(w, "\n%s:\n", inv)
				}
				fmt.Fprintf(w, "  %s\n", v.Detail)
				n++
			}
		}
		if more := c.count(inv) - n; more > 0 {
			fmt.Fprintf(w, "  … and %d more\n", more)
		}
	}
	if len(extra) > 0 {
		fmt.Fprintf(w, "\n%s\n", strings.Join(extra, "\n"))
	}
}

// longestGap is the longest stretch from start to end (when pushes flowed again, or start when
// they never did) without a push through gateway gw (any, when gw < 0).
func longestGap(pushes []pushRef, start, end time.Time, gw int) time.Duration {
	if end.IsZero() {
		return 0
	}
	var longest time.Duration
	prev := start
	for _, p := range pushes {
		if p.Resync || p.At.Before(start) || p.At.After(end) || (gw >= 0 && p.Gateway != gw) {
			continue
		}
		longest = max(longest, p.At.Sub(prev))
		prev = p.At
	}
	return max(longest, end.Sub(prev))
}
