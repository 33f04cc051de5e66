package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func init() {
	register("sockets", command{
		summary: "what an idle subscribed WebSocket costs the gateway (and the client), per socket",
		run:     runSockets,
	})
}

// runSockets measures what an idle WebSocket subscribed to balanceChanged costs the gateway
// (R-ACC-10): the sockets are opened by this process, so the gateway process's figures hold
// only the server side; this process reports its own. The gateway is the embedded default.
func runSockets(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sockets", flag.ContinueOnError)
	fs.SetOutput(out)
	var s servers
	s.flags(fs)
	n := fs.Int("sockets", 2000, "idle subscribed sockets to open")
	protoName := fs.String("protocol", transportWS.Name, "subprotocol of the sockets: graphql-transport-ws or graphql-ws")
	idle := fs.Duration("idle", 2*time.Second, "how long the sockets stay idle before the memory is sampled")
	heapProfile := fs.String("heapprofile", "", "write the gateway's heap profile, sockets open, to this file (go tool pprof -top -inuse_space FILE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return errors.New("-sockets must be positive")
	}
	proto, err := protoNamed(*protoName)
	if err != nil {
		return err
	}
	if err := raiseFileLimit(*n + 1000); err != nil { // the gateway, started below, inherits it
		return err
	}
	dir, err := os.MkdirTemp("", "atesbench-sockets-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := s.binary(ctx, dir, out)
	if err != nil {
		return err
	}
	gw, err := startAtes(ctx, bin, embeddedEnviron(dir))
	if err != nil {
		return err
	}
	err = measureSockets(ctx, gw, *n, proto, *idle, *heapProfile, out)
	return errors.Join(err, gw.stop())
}

func measureSockets(ctx context.Context, gw *atesProcess, n int, proto wsProto, idle time.Duration, heapProfile string, out io.Writer) error {
	base := gw.base
	boss, err := login(ctx, base, "boss", "boss-beak-print")
	if err != nil {
		return err
	}
	mgr, err := createPopug(ctx, base, boss.Token, "max", "MANAGER")
	if err != nil {
		return err
	}
	kiwi, err := signUp(ctx, base, "kiwi")
	if err != nil {
		return err
	}
	created := 0
	newTask := func() error {
		created++
		_, err := createTask(ctx, base, mgr.Token, created)
		return err
	}
	// Warm the gateway up (one socket, one push) so that one-off allocations are not counted.
	c, err := dialWS(ctx, base, transportWS, kiwi.Token, 16)
	if err != nil {
		return err
	}
	warm, err := subscribeBalance("warm-up", c)
	if err != nil {
		return err
	}
	if err := pushEach(ctx, []*balanceSub{warm}, newTask); err != nil {
		return err
	}
	c.close()
	time.Sleep(500 * time.Millisecond) // the closed socket's goroutines end

	before, err := sampleAtes(ctx, gw)
	if err != nil {
		return err
	}
	clientBefore := sampleSelf()
	start := time.Now()
	subs := make([]*balanceSub, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := dialWS(ctx, base, proto, kiwi.Token, 4)
				if err == nil {
					subs[i], err = subscribeBalance(strconv.Itoa(i), c)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			s.c.close()
		}
	}()
	opened := time.Since(start)
	// Every socket is subscribed once every socket has had a push.
	if err := pushEach(ctx, subs, newTask); err != nil {
		return err
	}
	time.Sleep(idle)
	after, err := sampleAtes(ctx, gw)
	if err != nil {
		return err
	}
	if heapProfile != "" {
		b, err := gw.get(ctx, "/debug/pprof/heap")
		if err == nil {
			err = os.WriteFile(heapProfile, b, 0o644)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "heap profile written to %s (go tool pprof -top -inuse_space %s)\n", heapProfile, heapProfile)
	}
	clientAfter := sampleSelf()
	fmt.Fprintf(out, "%d idle subscribed WebSockets over %s (opened and subscribed in %v); load average %s\n", n, proto.Name, opened.Round(time.Millisecond), loadAverage())
	fmt.Fprintf(out, "gateway process (server side only), per socket: %s\n", before.perSocket(after, n, "a full GC"))
	fmt.Fprintf(out, "gateway process totals: heap in use %d → %d MiB, VmRSS %d → %d MiB\n", before.HeapInuse>>20, after.HeapInuse>>20, before.RSS>>20, after.RSS>>20)
	fmt.Fprintf(out, "client process, per socket: %s\n", clientBefore.perSocket(clientAfter, n, "a full GC and FreeOSMemory"))
	return nil
}

// pushEach creates tasks until every subscription has had a push (at most 30, each given
// five seconds): then each is held by the gateway's hub. A reader per subscription keeps
// reading until its socket closes.
func pushEach(ctx context.Context, subs []*balanceSub, newTask func() error) error {
	var pushed atomic.Int64
	readerErr := make(chan error, 1)
	for _, s := range subs {
		go func() {
			first := true
			for {
				_, err := s.next(time.Hour)
				if err != nil {
					if first {
						select {
						case readerErr <- fmt.Errorf("%s: %w", s.name, err):
						default:
						}
					}
					return
				}
				if first {
					first = false
					pushed.Add(1)
				}
			}
		}()
	}
	for range 30 {
		if err := newTask(); err != nil {
			return err
		}
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); {
			if pushed.Load() == int64(len(subs)) {
				return nil
			}
			select {
			case err := <-readerErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return fmt.Errorf("%d of %d subscriptions never got a push", int64(len(subs))-pushed.Load(), len(subs))
}

// sampleAtes samples an ates process's memory: VmRSS as found, then after full collections
// (the heap profile endpoint collects first) its Go runtime's figures from /metrics and VmRSS.
// Unlike sampleSelf it cannot make the process return its free pages to the OS at once, so its
// RSS after the collection includes what the runtime has not scavenged yet.
func sampleAtes(ctx context.Context, p *atesProcess) (memSample, error) {
	pid := strconv.Itoa(p.pid())
	asFound := vmRSS(pid)
	for range 3 {
		if _, err := p.get(ctx, "/debug/pprof/heap?gc=1"); err != nil {
			return memSample{}, err
		}
	}
	g, err := p.gauges(ctx, "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "go_goroutines")
	if err != nil {
		return memSample{}, err
	}
	return memSample{
		RSSAsFound: asFound, HeapInuse: uint64(g["go_memstats_heap_inuse_bytes"]), StackInuse: uint64(g["go_memstats_stack_inuse_bytes"]),
		Sys: uint64(g["go_memstats_sys_bytes"]), RSS: vmRSS(pid), Goroutines: int(g["go_goroutines"]),
	}, nil
}

// raiseFileLimit lifts the soft limit of open files to the hard one, and fails when even that
// is below need.
func raiseFileLimit(need int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return err
		}
	}
	if l.Cur < uint64(need) {
		return fmt.Errorf("needs %d open files, the limit is %d", need, l.Cur)
	}
	return nil
}
