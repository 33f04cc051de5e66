package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/lib/pq"

	"github.com/uberpopug/ates/ent/accountingdb"
	"github.com/uberpopug/ates/ent/accountingdb/dayclose"
	"github.com/uberpopug/ates/ent/accountingdb/entry"
	"github.com/uberpopug/ates/ent/authdb"
	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/graph"
	"github.com/uberpopug/ates/services/accounting"
	"github.com/uberpopug/ates/services/analytics"
	"github.com/uberpopug/ates/services/auth"
	"github.com/uberpopug/ates/services/calendar"
	"github.com/uberpopug/ates/services/contract"
	"github.com/uberpopug/ates/services/event"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/outbox"
	"github.com/uberpopug/ates/services/page"
	"github.com/uberpopug/ates/services/storage"
	"github.com/uberpopug/ates/services/tasks"
)

func init() {
	register("scale", command{
		summary: "build a year of a 50-popug company (10k–1M tasks) and time the gateway's reads and shuffles",
		run:     runScale,
	})
}

// The company and its year: the same for every size, so a kept database and a fresh build of
// the same size hold the same tasks, assignees and prices' draws.
const (
	scaleSeed        = 2026
	scaleYearDays    = 365
	scaleCloseEvery  = 30 // a scheduled close every 30th day, and on the last day
	scaleTaskChunk   = 2000
	scaleEventChunk  = 3000
	scalePassword    = "scale-beak-print-2026"
	scaleAdminName   = "root"
	scaleCompleteMax = 72 * time.Hour
)

// scaleYearStart is the first day of the built year; reads over "365 days" cover exactly it.
var scaleYearStart = calendar.Date{Year: 2025, Month: time.December, Day: 1}

// scalePopugs are the company's accounts besides the bootstrap admin: 50 in all.
func scalePopugs() []auth.NewAccount {
	var out []auth.NewAccount
	add := func(name string, role identity.Role) {
		out = append(out, auth.NewAccount{
			Username: name, Password: scalePassword, Role: role,
			FullName: "Popug " + name, Email: name + "@uberpopug.test",
		})
	}
	for i := 1; i <= 2; i++ {
		add(fmt.Sprintf("manager%d", i), identity.Manager)
		add(fmt.Sprintf("accountant%d", i), identity.Accountant)
	}
	for i := 1; i <= 45; i++ {
		add(fmt.Sprintf("worker%02d", i), identity.Worker)
	}
	return out
}

// loadHook rebuilds what a context derives from its own rows (counters, per-day rollups) after
// the bulk load wrote those rows without passing through its use cases.
type loadHook struct {
	name string
	run  func(ctx context.Context, s *scaleStores) error
}

// afterLoad runs in order after a build, and on a kept database, before the invariants are
// checked; each derived table adds one element here, of the form
//
//	{"task counters", func(ctx context.Context, s *scaleStores) error { return tasks.Recount(ctx, s.tasks) }},
//
// (s holds every context's storage.DB, Ent client and service). Each is timed in the report.
var afterLoad = []loadHook{
	{"task counters", func(ctx context.Context, s *scaleStores) error { return tasks.Recount(ctx, s.tasks) }},
	{"ledger rollups", func(ctx context.Context, s *scaleStores) error { return accounting.RebuildRollups(ctx, s.accountDB) }},
}

type scaleConfig struct {
	sizes      []int
	dialect    string
	dsn        string
	keep       bool
	iterations int
	warmup     int
	openShare  float64
	log        *slog.Logger
}

func runScale(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(out)
	sizes := fs.String("sizes", "10000,100000,1000000", "task counts to build, comma-separated")
	d := fs.String("dialect", dialect.Postgres, "database: postgres or sqlite")
	dsn := fs.String("dsn", "", "PostgreSQL: a postgres://…/NAME URL (databases NAME_<size>_<context> are used);\n"+
		"SQLite: a directory (<dir>/<size>/<context>.db). Default: postgres://postgres@127.0.0.1:5432/atesbench_scale, or atesbench-scale in the temporary directory")
	keep := fs.Bool("keep", false, "reuse a database of the same size built by an earlier run, and keep it afterwards")
	iterations := fs.Int("iterations", 200, "timed requests per read")
	warmup := fs.Int("warmup", 20, "untimed requests per read before timing")
	openShare := fs.Float64("open", 0.055, "share of the year's tasks still open at its end (0.055: 55 000 of 1 000 000)")
	verbose := fs.Bool("v", false, "log the services' messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := scaleConfig{keep: *keep, iterations: *iterations, warmup: *warmup, dsn: *dsn, openShare: *openShare}
	switch *d {
	case "postgres", "postgresql", "pg":
		cfg.dialect = dialect.Postgres
		if cfg.dsn == "" {
			cfg.dsn = "postgres://postgres@127.0.0.1:5432/atesbench_scale?sslmode=disable"
		}
	case "sqlite", "sqlite3":
		cfg.dialect = dialect.SQLite
		if cfg.dsn == "" {
			cfg.dsn = filepath.Join(os.TempDir(), "atesbench-scale")
		}
	default:
		return fmt.Errorf("scale: -dialect must be postgres or sqlite, not %q", *d)
	}
	for f := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			return fmt.Errorf("scale: -sizes: %q is not a task count of at least 100", f)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	if cfg.openShare < 0 || cfg.openShare > 1 {
		return errors.New("scale: -open must be between 0 and 1")
	}
	if cfg.iterations < 1 || cfg.warmup < 0 {
		return errors.New("scale: -iterations must be positive and -warmup not negative")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	cfg.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	fmt.Fprintf(out, "# Reads at scale (%s)\n\n%s; %d timed requests per read after %d untimed, in-process through the gateway's HTTP handler.\n",
		cfg.dialect, time.Now().UTC().Format("2006-01-02 15:04 UTC"), cfg.iterations, cfg.warmup)
	for _, n := range cfg.sizes {
		if err := scaleOne(ctx, cfg, n, out); err != nil {
			return fmt.Errorf("scale %d: %w", n, err)
		}
	}
	return nil
}

// scaleStores are the contexts' databases, Ent clients and services of one size.
type scaleStores struct {
	dialect                string
	auth, tasks, accountDB *storage.DB
	authClient             *authdb.Client
	tasksClient            *tasksdb.Client
	accClient              *accountingdb.Client
	authSvc                *auth.Service
	tracker                *tasks.Service
	acc                    *accounting.Service
	// clock is the accounting service's time: the built history's while building, then now.
	clock *scaleClock
}

func (s *scaleStores) close() {
	for _, db := range []*storage.DB{s.auth, s.tasks, s.accountDB} {
		if db != nil {
			db.Close()
		}
	}
}

// scaleClock is a time source the builder moves; zero means the wall clock.
type scaleClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *scaleClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now()
	}
	return c.now
}

func (c *scaleClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var scaleContexts = []string{"auth", "tasks", "accounting"}

// scaleLocation returns where the size's databases live: a base URL (PostgreSQL) or directory.
func scaleLocation(cfg scaleConfig, n int) (string, error) {
	if cfg.dialect == dialect.SQLite {
		return filepath.Join(cfg.dsn, strconv.Itoa(n)), nil
	}
	u, err := url.Parse(cfg.dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || strings.Trim(u.Path, "/") == "" {
		return "", fmt.Errorf("-dsn must be postgres://…/NAME for PostgreSQL, got %q", cfg.dsn)
	}
	u.Path = "/" + strings.Trim(u.Path, "/") + "_" + strconv.Itoa(n)
	return u.String(), nil
}

// dropScale removes the size's databases.
func dropScale(ctx context.Context, cfg scaleConfig, where string) error {
	if cfg.dialect == dialect.SQLite {
		return os.RemoveAll(where)
	}
	u, err := url.Parse(where)
	if err != nil {
		return err
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	for _, c := range scaleContexts {
		cu, err := storage.ContextURL(where, c)
		if err != nil {
			return err
		}
		p, _ := url.Parse(cu)
		name := strings.TrimPrefix(p.Path, "/")
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping %s: %w", name, err)
		}
	}
	return nil
}

// openScale opens and migrates the size's databases and builds the services on them, as
// cmd/ates does.
func openScale(ctx context.Context, cfg scaleConfig, where string) (_ *scaleStores, err error) {
	s := &scaleStores{dialect: cfg.dialect, clock: &scaleClock{}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	scfg := storage.Config{DatabaseURL: where}
	if cfg.dialect == dialect.SQLite {
		scfg = storage.Config{DataDir: where}
	}
	dbs := map[string]**storage.DB{"auth": &s.auth, "tasks": &s.tasks, "accounting": &s.accountDB}
	migrations := map[string]func(context.Context, *storage.DB) error{
		"auth": auth.Migrate, "tasks": tasks.Migrate, "accounting": accounting.Migrate,
	}
	for _, name := range scaleContexts {
		db, err := storage.Open(ctx, scfg, name)
		if err != nil {
			return nil, fmt.Errorf("%s database: %w", name, err)
		}
		*dbs[name] = db
		if err := db.Migrate(ctx, func(ctx context.Context) error {
			if err := migrations[name](ctx, db); err != nil {
				return err
			}
			return outbox.Migrate(ctx, db)
		}); err != nil {
			return nil, fmt.Errorf("migrating the %s database: %w", name, err)
		}
	}
	registry, err := event.DefaultRegistry()
	if err != nil {
		return nil, err
	}
	writer := func(db *storage.DB) *outbox.Writer {
		w, werr := outbox.NewWriter(db.Dialect, registry)
		if werr != nil {
			err = werr
		}
		return w
	}
	authOutbox, tasksOutbox, accOutbox := writer(s.auth), writer(s.tasks), writer(s.accountDB)
	if err != nil {
		return nil, err
	}
	s.authClient = authdb.NewClient(authdb.Driver(s.auth.Driver()))
	// Hashing cost is not what is measured: a cheap argon2id keeps logins out of the way.
	if s.authSvc, err = auth.New(ctx, auth.Config{
		Client: s.authClient, Outbox: authOutbox, Clock: time.Now, Logger: cfg.log.With("context", "auth"),
		Argon2: auth.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1},
	}); err != nil {
		return nil, err
	}
	s.tasksClient = tasksdb.NewClient(tasksdb.Driver(s.tasks.Driver()))
	if s.tracker, err = tasks.New(tasks.Config{
		Client: s.tasksClient, DB: s.tasks.SQL, Dialect: s.tasks.Dialect, Outbox: tasksOutbox, Clock: time.Now,
		Rand: tasks.NewLockedRand(nil), Logger: cfg.log.With("context", "tasks"),
	}); err != nil {
		return nil, err
	}
	s.accClient = accountingdb.NewClient(accountingdb.Driver(s.accountDB.Driver()))
	if s.acc, err = accounting.New(accounting.Config{
		Client: s.accClient, DB: s.accountDB.SQL, Dialect: s.accountDB.Dialect, Outbox: accOutbox, Clock: s.clock.Now,
		Rand: tasks.NewLockedRand(rand.New(rand.NewPCG(scaleSeed, 1))), Location: time.UTC,
		Logger: cfg.log.With("context", "accounting"),
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// scalePlan is the year's tasks, drawn from a fixed seed: task i is created at created[i]
// (in id order), assigned to pool[assignee[i]] and, when completed[i] is not zero, completed
// then by that assignee.
type scalePlan struct {
	n         int
	ids       []uuid.UUID
	assignee  []uint8
	created   []time.Time
	completed []time.Time
	done      int
	// byID maps a task's public id to its index.
	byID map[uuid.UUID]int32
}

func newScalePlan(n, poolSize int, openShare float64) *scalePlan {
	r := rand.New(rand.NewPCG(scaleSeed, uint64(n)))
	start := scaleYearStart.Start(time.UTC)
	end := start.AddDate(0, 0, scaleYearDays)
	span := end.Sub(start)
	p := &scalePlan{
		n: n, ids: make([]uuid.UUID, n), assignee: make([]uint8, n), created: make([]time.Time, n),
		completed: make([]time.Time, n), byID: make(map[uuid.UUID]int32, n),
	}
	for i := range n {
		var id uuid.UUID
		for j := range id {
			id[j] = byte(r.UintN(256))
		}
		id[6] = id[6]&0x0f | 0x40
		id[8] = id[8]&0x3f | 0x80
		p.ids[i] = id
		p.byID[id] = int32(i)
		p.assignee[i] = uint8(r.IntN(poolSize))
		p.created[i] = start.Add(time.Duration(float64(span) * float64(i) / float64(n))).Truncate(time.Microsecond)
		if r.Float64() >= openShare {
			c := p.created[i].Add(time.Duration(r.Int64N(int64(scaleCompleteMax))))
			if !c.Before(end) {
				c = end.Add(-time.Second)
			}
			p.completed[i] = c.Truncate(time.Microsecond)
			p.done++
		}
	}
	return p
}

func (p *scalePlan) title(i int) string {
	return fmt.Sprintf("Year task %d: tune the beak scanner", i+1)
}

func (p *scalePlan) jira(i int) *string {
	if i%4 != 0 {
		return nil
	}
	j := fmt.Sprintf("UBERPOP-%d", i+1)
	return &j
}

func (p *scalePlan) description(i int) string {
	return fmt.Sprintf("Task %d of the scale benchmark's year.", i+1)
}

// isCloseDay reports whether the year's day d (0-based) ends with a scheduled close.
func isCloseDay(d int) bool { return d%scaleCloseEvery == scaleCloseEvery-1 || d == scaleYearDays-1 }

func scaleCloses() int {
	n := 0
	for d := range scaleYearDays {
		if isCloseDay(d) {
			n++
		}
	}
	return n
}

// scaleBuild is what the build did and how long it took.
type scaleBuild struct {
	reused                          bool
	total, popugs, tasks, ledger    time.Duration
	closes, vacuum, hooks           time.Duration
	hookTimes                       []time.Duration
	earlierShuffles                 int
	entries, payouts, open, done, n int
}

func scaleOne(ctx context.Context, cfg scaleConfig, n int, out io.Writer) (err error) {
	where, err := scaleLocation(cfg, n)
	if err != nil {
		return err
	}
	if !cfg.keep {
		if err := dropScale(ctx, cfg, where); err != nil {
			return err
		}
	}
	load0 := loadAverage()
	began := time.Now()
	s, err := openScale(ctx, cfg, where)
	if err != nil {
		return err
	}
	defer func() {
		s.close()
		if !cfg.keep {
			err = errors.Join(err, dropScale(context.WithoutCancel(ctx), cfg, where))
		}
	}()
	pool, err := scaleCompany(ctx, s)
	if err != nil {
		return err
	}
	plan := newScalePlan(n, len(pool), cfg.openShare)
	b := scaleBuild{n: n, popugs: time.Since(began)}
	built, err := s.tasksClient.Task.Query().Count(ctx)
	if err != nil {
		return err
	}
	closed, err := s.accClient.DayClose.Query().Where(dayclose.FinishedAtNotNil(), dayclose.ScheduledDayNotNil()).Count(ctx)
	if err != nil {
		return err
	}
	switch {
	case built == n && closed == scaleCloses():
		b.reused = true
	case built != 0 || closed != 0:
		return fmt.Errorf("%s holds an unfinished or different build (%d tasks, %d closes): run without -keep", where, built, closed)
	default:
		fmt.Fprintf(os.Stderr, "atesbench scale: building %d tasks on %s…\n", n, cfg.dialect)
		if err := buildScale(ctx, s, plan, pool, &b); err != nil {
			return err
		}
	}
	t := time.Now()
	for _, h := range afterLoad {
		ht := time.Now()
		if err := h.run(ctx, s); err != nil {
			return fmt.Errorf("after load, %s: %w", h.name, err)
		}
		b.hookTimes = append(b.hookTimes, time.Since(ht))
	}
	b.hooks = time.Since(t)
	b.total = time.Since(began)
	if err := checkScale(ctx, s, plan, pool, &b); err != nil {
		return fmt.Errorf("invariants: %w", err)
	}
	loadBuilt := loadAverage()

	gw, err := newScaleGateway(ctx, s, cfg.log)
	if err != nil {
		return err
	}
	reads, err := scaleReads(ctx, s, plan, pool)
	if err != nil {
		return err
	}
	before, err := gw.measure(ctx, reads, cfg)
	if err != nil {
		return fmt.Errorf("reads: %w", err)
	}
	loadBefore := loadAverage()
	// A shuffle the gateway refuses (its request timeout, say) is reported, not fatal: what it
	// left behind is what the reads after it see.
	var shuffles [2]shuffleRun
	for i := range shuffles {
		r := &shuffles[i]
		r.took, r.reassigned, r.err = gw.shuffle()
		if r.err == nil && r.reassigned != b.open {
			return fmt.Errorf("shuffle %d reassigned %d tasks, want the %d open ones", i+1, r.reassigned, b.open)
		}
	}
	// The reads' expectations after the shuffles (the assignee's open tasks changed).
	if reads, err = scaleReads(ctx, s, plan, pool); err != nil {
		return err
	}
	after, err := gw.measure(ctx, reads, cfg)
	if err != nil {
		return fmt.Errorf("reads after the shuffles: %w", err)
	}
	loadAfter := loadAverage()
	writeScaleReport(out, cfg, b, reads, before, after, shuffles, [4]string{load0, loadBuilt, loadBefore, loadAfter})
	return nil
}

// scaleCompany creates the 50 popugs through auth (bootstrap admin, then CreateAccount), or
// finds them in a kept database, and feeds their account events to the task tracker's and
// accounting's replicas. It returns the assignable popugs (R-TASK-3) by username.
func scaleCompany(ctx context.Context, s *scaleStores) ([]auth.Account, error) {
	created, _, err := s.authSvc.Bootstrap(ctx, scaleAdminName, scalePassword)
	if err != nil {
		return nil, err
	}
	if created {
		admin, err := s.authSvc.Login(ctx, scaleAdminName, scalePassword, "")
		if err != nil {
			return nil, err
		}
		actor := identity.Actor{AccountID: admin.Account.ID, Role: identity.Admin}
		for _, a := range scalePopugs() {
			if _, err := s.authSvc.CreateAccount(ctx, actor, a); err != nil {
				return nil, fmt.Errorf("creating %s: %w", a.Username, err)
			}
		}
		var envs []event.Envelope
		for e, err := range analytics.OutboxEvents(ctx, s.auth.SQL, s.dialect, []string{contract.AccountCreated, contract.AccountUpdated}) {
			if err != nil {
				return nil, err
			}
			envs = append(envs, e)
		}
		if err := storage.InTx(ctx, s.tasksClient.Tx, func(tx *tasksdb.Tx) error {
			for _, e := range envs {
				if err := s.tracker.Apply(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("task tracker's replica: %w", err)
		}
		if err := storage.InTx(ctx, s.accClient.Tx, func(tx *accountingdb.Tx) error {
			return s.acc.ApplyBatch(ctx, tx, envs)
		}); err != nil {
			return nil, fmt.Errorf("accounting's replica: %w", err)
		}
	}
	roles := map[string]identity.Role{}
	for _, a := range scalePopugs() {
		roles[a.Username] = a.Role
	}
	rows, err := s.authClient.Account.Query().All(ctx)
	if err != nil {
		return nil, err
	}
	var pool []auth.Account
	for _, r := range rows {
		if role, ok := roles[r.Username]; ok && role != identity.Admin && role != identity.Manager {
			pool = append(pool, auth.Account{ID: r.PublicID, Username: r.Username, Role: role, Active: true})
		}
	}
	slices.SortFunc(pool, func(a, b auth.Account) int { return strings.Compare(a.Username, b.Username) })
	want := 0
	for _, role := range roles {
		if role != identity.Admin && role != identity.Manager {
			want++
		}
	}
	if len(pool) != want {
		return nil, fmt.Errorf("found %d assignable popugs, want %d", len(pool), want)
	}
	return pool, nil
}

// buildScale writes the year in time order: the tasks with Ent's CreateBulk, in their final
// state, in chunks; the task events (created, assigned, completed) applied by accounting's own
// consumer code, ApplyBatch, in chunks; a scheduled close at the end of every 30th day and of
// the last, after every event before it. On PostgreSQL the tables are then vacuumed and analysed, as
// autovacuum would have done in a year.
func buildScale(ctx context.Context, s *scaleStores, p *scalePlan, pool []auth.Account, b *scaleBuild) error {
	began := time.Now()
	compByDay := make([][]int32, scaleYearDays)
	start := scaleYearStart.Start(time.UTC)
	dayOf := func(t time.Time) int { return int(t.Sub(start) / (24 * time.Hour)) }
	for i := range p.n {
		if !p.completed[i].IsZero() {
			d := dayOf(p.completed[i])
			compByDay[d] = append(compByDay[d], int32(i))
		}
	}
	// Tasks and events wait until a chunk is full (or a close is due), so a small year takes
	// as few transactions as a large one takes per chunk.
	taskFrom, next := 0, 0
	flushTasks := func(upTo int) error {
		t := time.Now()
		defer func() { b.tasks += time.Since(t) }()
		for taskFrom < upTo {
			hi := min(taskFrom+scaleTaskChunk, upTo)
			builders := make([]*tasksdb.TaskCreate, 0, hi-taskFrom)
			for i := taskFrom; i < hi; i++ {
				tc := s.tasksClient.Task.Create().SetPublicID(p.ids[i]).SetTitle(p.title(i)).SetNillableJiraID(p.jira(i)).
					SetDescription(p.description(i)).SetAssigneeID(pool[p.assignee[i]].ID).SetCreatedAt(p.created[i])
				if !p.completed[i].IsZero() {
					tc.SetStatus(task.StatusDONE).SetCompletedAt(p.completed[i])
				}
				builders = append(builders, tc)
			}
			created, err := s.tasksClient.Task.CreateBulk(builders...).Save(ctx)
			if err != nil {
				return fmt.Errorf("tasks %d…%d: %w", taskFrom+1, hi, err)
			}
			// Each task's search text, as createTask writes it beside the task.
			texts := make([]*tasksdb.TaskSearchCreate, len(created))
			for j, t := range created {
				i := taskFrom + j
				texts[j] = s.tasksClient.TaskSearch.Create().SetTaskID(t.ID).SetSearchText(tasks.SearchText(p.title(i), p.jira(i), p.description(i)))
			}
			if err := s.tasksClient.TaskSearch.CreateBulk(texts...).Exec(ctx); err != nil {
				return fmt.Errorf("search texts of tasks %d…%d: %w", taskFrom+1, hi, err)
			}
			taskFrom = hi
		}
		return nil
	}
	var pending []event.Envelope
	flushEvents := func() error {
		t := time.Now()
		defer func() { b.ledger += time.Since(t) }()
		for len(pending) > 0 {
			chunk := pending[:min(scaleEventChunk, len(pending))]
			s.clock.Set(chunk[len(chunk)-1].Time)
			if err := storage.InTx(ctx, s.accClient.Tx, func(tx *accountingdb.Tx) error {
				return s.acc.ApplyBatch(ctx, tx, chunk)
			}); err != nil {
				return fmt.Errorf("the ledger of %s: %w", chunk[0].Time.Format(time.DateOnly), err)
			}
			pending = pending[len(chunk):]
		}
		pending = nil
		return nil
	}
	for d := range scaleYearDays {
		lo := next
		for next < p.n && dayOf(p.created[next]) == d {
			next++
		}
		if next-taskFrom >= scaleTaskChunk {
			if err := flushTasks(next - (next-taskFrom)%scaleTaskChunk); err != nil {
				return err
			}
		}
		t := time.Now()
		envs, err := p.dayEvents(ctx, lo, next, compByDay[d], pool)
		if err != nil {
			return err
		}
		pending = append(pending, envs...)
		b.ledger += time.Since(t)
		if len(pending) >= scaleEventChunk || isCloseDay(d) {
			if err := flushEvents(); err != nil {
				return err
			}
		}
		if (d+1)%73 == 0 {
			fmt.Fprintf(os.Stderr, "atesbench scale: %d tasks: day %d of %d written after %s\n", p.n, d+1, scaleYearDays, secs(time.Since(began)))
		}
		if isCloseDay(d) {
			t := time.Now()
			day := scaleYearStart.AddDays(d)
			s.clock.Set(day.AddDays(1).Start(time.UTC).Add(time.Minute))
			if _, ran, err := s.acc.CloseScheduled(ctx, day); err != nil || !ran {
				return fmt.Errorf("closing %s (ran: %v): %w", day, ran, err)
			}
			b.closes += time.Since(t)
		}
	}
	if err := flushTasks(next); err != nil {
		return err
	}
	s.clock.Set(time.Time{})
	if next != p.n {
		return fmt.Errorf("the plan's tasks end at %d of %d", next, p.n)
	}
	if s.dialect == dialect.Postgres {
		t := time.Now()
		for _, db := range []*storage.DB{s.tasks, s.accountDB} {
			if _, err := db.SQL.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
				return fmt.Errorf("vacuuming %s: %w", db.Name, err)
			}
		}
		b.vacuum = time.Since(t)
	}
	return nil
}

// dayEvents are the task tracker's events of one day, oldest first, as its outbox would have
// carried them: task.created and task.assigned of the tasks lo…hi-1, task.completed of the
// tasks completed that day.
func (p *scalePlan) dayEvents(ctx context.Context, lo, hi int, completed []int32, pool []auth.Account) ([]event.Envelope, error) {
	slices.SortFunc(completed, func(a, b int32) int { return p.completed[a].Compare(p.completed[b]) })
	envs := make([]event.Envelope, 0, 2*(hi-lo)+len(completed))
	add := func(name string, version int, at time.Time, data any) error {
		e, err := event.New(ctx, tasks.Producer, name, version, at, data)
		if err == nil {
			envs = append(envs, e)
		}
		return err
	}
	c := 0
	for i := lo; i <= hi; i++ {
		for c < len(completed) && (i == hi || p.completed[completed[c]].Before(p.created[i])) {
			j := completed[c]
			if err := add(contract.TaskCompleted, 1, p.completed[j], contract.TaskCompletedV1{
				TaskID: p.ids[j].String(), AssigneeID: pool[p.assignee[j]].ID.String(), CompletedAt: p.completed[j],
			}); err != nil {
				return nil, err
			}
			c++
		}
		if i == hi {
			break
		}
		id := p.ids[i].String()
		if err := add(contract.TaskCreated, contract.TaskCreatedVersion, p.created[i], contract.TaskCreatedV2{
			TaskID: id, Title: p.title(i), JiraID: p.jira(i), Description: p.description(i), CreatedAt: p.created[i],
		}); err != nil {
			return nil, err
		}
		if err := add(contract.TaskAssigned, 1, p.created[i], contract.TaskAssignedV1{
			TaskID: id, AssigneeID: pool[p.assignee[i]].ID.String(), Reason: contract.AssignedOnCreate, AssignedAt: p.created[i],
		}); err != nil {
			return nil, err
		}
	}
	return envs, nil
}

// checkScale fails unless the databases hold the plan: every task once, in its planned state
// (an open task's assignee may have changed by a shuffle); every account's balance the sum of
// its entries; exactly one fee per task (its one assignment through events) charged to its
// planned assignee and exactly one reward per completed task, to its assignee; one payment per
// payout entry; every planned close finished.
func checkScale(ctx context.Context, s *scaleStores, p *scalePlan, pool []auth.Account, b *scaleBuild) error {
	seen := make([]bool, p.n)
	var last int
	for {
		rows, err := s.tasksClient.Task.Query().Where(task.IDGT(last)).Order(tasksdb.Asc(task.FieldID)).Limit(20000).
			Select(task.FieldID, task.FieldPublicID, task.FieldStatus, task.FieldAssigneeID, task.FieldCompletedAt).All(ctx)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			i, ok := p.byID[r.PublicID]
			if !ok || seen[i] {
				return fmt.Errorf("task %s is not in the plan or stored twice", r.PublicID)
			}
			seen[i] = true
			done := !p.completed[i].IsZero()
			switch {
			case done && (r.Status != task.StatusDONE || r.AssigneeID != pool[p.assignee[i]].ID || r.CompletedAt == nil || !r.CompletedAt.Equal(p.completed[i])):
				return fmt.Errorf("completed task %s is stored as %s by %s", r.PublicID, r.Status, r.AssigneeID)
			case !done && (r.Status != task.StatusOPEN || r.CompletedAt != nil):
				return fmt.Errorf("open task %s is stored as %s", r.PublicID, r.Status)
			}
			if done {
				b.done++
			} else {
				b.open++
			}
		}
		last = rows[len(rows)-1].ID
	}
	if b.open+b.done != p.n || b.done != p.done {
		return fmt.Errorf("%d open and %d done tasks stored, want %d and %d", b.open, b.done, p.n-p.done, p.done)
	}

	fees, rewards := make([]uint8, p.n), make([]uint8, p.n)
	var lastEntry int
	for {
		rows, err := s.accClient.Entry.Query().Where(entry.IDGT(lastEntry)).Order(accountingdb.Asc(entry.FieldID)).Limit(50000).
			Select(entry.FieldID, entry.FieldType, entry.FieldTaskID, entry.FieldAccountID).All(ctx)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			break
		}
		for _, r := range rows {
			b.entries++
			if r.Type == entry.TypePAYOUT {
				b.payouts++
				continue
			}
			if r.TaskID == nil {
				return fmt.Errorf("%s entry %d names no task", r.Type, r.ID)
			}
			i, ok := p.byID[*r.TaskID]
			if !ok {
				return fmt.Errorf("%s entry %d names task %s, not in the plan", r.Type, r.ID, r.TaskID)
			}
			if r.AccountID != pool[p.assignee[i]].ID {
				return fmt.Errorf("%s of task %s went to %s, not its assignee", r.Type, r.TaskID, r.AccountID)
			}
			if r.Type == entry.TypeFEE {
				fees[i]++
			} else {
				rewards[i]++
			}
		}
		lastEntry = rows[len(rows)-1].ID
	}
	for i := range p.n {
		wantReward := uint8(0)
		if !p.completed[i].IsZero() {
			wantReward = 1
		}
		if fees[i] != 1 || rewards[i] != wantReward {
			return fmt.Errorf("task %s has %d fees and %d rewards, want 1 and %d", p.ids[i], fees[i], rewards[i], wantReward)
		}
	}

	var mismatched int
	if err := s.accountDB.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts a
		WHERE a.balance <> COALESCE((SELECT SUM(e.amount) FROM entries e WHERE e.account_id = a.public_id), 0)`).Scan(&mismatched); err != nil {
		return err
	}
	if mismatched != 0 {
		return fmt.Errorf("%d accounts' balance is not the sum of their entries", mismatched)
	}
	payments, err := s.accClient.Payment.Query().Count(ctx)
	if err != nil {
		return err
	}
	if payments != b.payouts {
		return fmt.Errorf("%d payments for %d payout entries", payments, b.payouts)
	}
	closes, err := s.accClient.DayClose.Query().Where(dayclose.FinishedAtNotNil()).Count(ctx)
	if err != nil {
		return err
	}
	if closes != scaleCloses() {
		return fmt.Errorf("%d finished closes, want %d", closes, scaleCloses())
	}
	priced, err := s.accClient.Task.Query().Count(ctx)
	if err != nil {
		return err
	}
	if priced != p.n {
		return fmt.Errorf("accounting priced %d tasks, want %d", priced, p.n)
	}
	// Shuffles of earlier runs on a kept database: every open task once per shuffle.
	shuffled, err := s.tasksClient.OutboxEvent.Query().Count(ctx)
	if err != nil {
		return err
	}
	if b.open > 0 {
		b.earlierShuffles = shuffled / b.open
	}
	return nil
}

// scaleRead is one measured GraphQL request and what its answer must hold.
type scaleRead struct {
	name  string
	as    string // username of the caller
	query string
	vars  map[string]any
	// path and want: the integer at path (or the list's length) in the data.
	path []string
	want int
}

// scaleReads are the measured reads, with what their answers must hold now.
func scaleReads(ctx context.Context, s *scaleStores, p *scalePlan, pool []auth.Account) ([]scaleRead, error) {
	worker := pool[len(pool)-1] // worker45: a worker among 47 assignable popugs
	deep, err := s.tasksClient.Task.Query().Order(tasksdb.Asc(task.FieldID)).Offset(p.n * 9 / 10).FirstID(ctx)
	if err != nil {
		return nil, err
	}
	open, err := s.tasksClient.Task.Query().Where(task.StatusEQ(task.StatusOPEN)).Count(ctx)
	if err != nil {
		return nil, err
	}
	mine, err := s.tasksClient.Task.Query().Where(task.AssigneeID(worker.ID)).Count(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.accClient.Entry.Query().Where(entry.AccountID(worker.ID)).Count(ctx)
	if err != nil {
		return nil, err
	}
	from, to := scaleYearStart.String(), scaleYearStart.AddDays(scaleYearDays-1).String()
	const page = `{totalCount edges{node{id}}}`
	return []scaleRead{
		{name: "tasks(first:20) first page", as: scaleAdminName, query: `{tasks(first:20)` + page + `}`,
			path: []string{"tasks", "totalCount"}, want: p.n},
		{name: "tasks(first:20) page at 90 %", as: scaleAdminName,
			query: `query($after:String){tasks(first:20,after:$after)` + page + `}`,
			vars:  map[string]any{"after": pageCursor(deep)}, path: []string{"tasks", "totalCount"}, want: p.n},
		{name: "tasks(status:OPEN)", as: scaleAdminName, query: `{tasks(first:20,status:OPEN)` + page + `}`,
			path: []string{"tasks", "totalCount"}, want: open},
		{name: "tasks(assigneeId:X)", as: scaleAdminName, query: `query($id:ID!){tasks(first:20,assigneeId:$id)` + page + `}`,
			vars: map[string]any{"id": worker.ID.String()}, path: []string{"tasks", "totalCount"}, want: mine},
		{name: "myTasks", as: worker.Username, query: `{myTasks(first:20)` + page + `}`,
			path: []string{"myTasks", "totalCount"}, want: mine},
		{name: "billingAccount{entries{totalCount}}", as: scaleAdminName,
			query: `query($id:ID!){billingAccount(accountId:$id){entries{totalCount}}}`,
			vars:  map[string]any{"id": worker.ID.String()}, path: []string{"billingAccount", "entries", "totalCount"}, want: entries},
		{name: "billingAccount{days} over 365 days", as: scaleAdminName,
			query: `query($id:ID!,$from:Date!,$to:Date!){billingAccount(accountId:$id){days(from:$from,to:$to){date earned paidOut}}}`,
			vars:  map[string]any{"id": worker.ID.String(), "from": from, "to": to}, path: []string{"billingAccount", "days"}, want: scaleYearDays},
		{name: "managementEarnings over 365 days", as: scaleAdminName,
			query: `query($from:Date!,$to:Date!){managementEarnings(from:$from,to:$to){date managementEarnings}}`,
			vars:  map[string]any{"from": from, "to": to}, path: []string{"managementEarnings"}, want: scaleYearDays},
	}, nil
}

func pageCursor(id int) string { return page.EncodeCursor(int64(id)) }

// scaleGateway is graph.NewHandler over the size's services, wired as cmd/ates wires it;
// requests are served in-process.
type scaleGateway struct {
	handler http.Handler
	auth    *auth.Service
	tokens  map[string]string
}

func newScaleGateway(ctx context.Context, s *scaleStores, log *slog.Logger) (*scaleGateway, error) {
	keys, err := s.authSvc.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	revocations := auth.NewRevocations()
	if err := s.authSvc.SeedRevocations(ctx, revocations); err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Revocations: revocations, Clock: time.Now, Lookup: s.authSvc.LookupAccount})
	if err != nil {
		return nil, err
	}
	jwks, err := auth.JWKS(keys)
	if err != nil {
		return nil, err
	}
	resolver := &graph.Resolver{
		Auth: s.authSvc, TaskTracker: s.tracker, Accounting: s.acc, Hub: graph.NewHub(log), Log: log,
		Location: time.UTC, Clock: time.Now,
	}
	h, err := graph.NewHandler(graph.Config{
		Resolver: resolver, Verifier: verifier, Logger: log, MetricsElsewhere: true,
		JWKS: func(context.Context) ([]byte, error) { return jwks, nil },
	})
	if err != nil {
		return nil, err
	}
	return &scaleGateway{handler: h, auth: s.authSvc, tokens: map[string]string{}}, nil
}

// login gives the gateway fresh tokens for the callers (an access token lives minutes).
func (g *scaleGateway) login(ctx context.Context, users ...string) error {
	for _, u := range users {
		sess, err := g.auth.Login(ctx, u, scalePassword, "")
		if err != nil {
			return fmt.Errorf("logging in %s: %w", u, err)
		}
		g.tokens[u] = sess.Token
	}
	return nil
}

// do posts one GraphQL request to the handler and returns its data; an error answer fails.
func (g *scaleGateway) do(as, query string, vars map[string]any) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.tokens[as])
	rec := httptest.NewRecorder()
	g.handler.ServeHTTP(rec, req)
	var resp struct {
		Data   json.RawMessage   `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || rec.Code != http.StatusOK || len(resp.Errors) > 0 {
		return nil, fmt.Errorf("status %d: %.500s", rec.Code, rec.Body.String())
	}
	return resp.Data, nil
}

// measure times every read: its answer is checked once, then warm-up requests, then timed ones.
func (g *scaleGateway) measure(ctx context.Context, reads []scaleRead, cfg scaleConfig) ([][]time.Duration, error) {
	out := make([][]time.Duration, len(reads))
	for i, r := range reads {
		if err := g.login(ctx, r.as); err != nil {
			return nil, err
		}
		data, err := g.do(r.as, r.query, r.vars)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.name, err)
		}
		if got, err := intAt(data, r.path); err != nil || got != r.want {
			return nil, fmt.Errorf("%s: %v = %d (%v), want %d", r.name, r.path, got, err, r.want)
		}
		for range cfg.warmup {
			if _, err := g.do(r.as, r.query, r.vars); err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
		}
		times := make([]time.Duration, cfg.iterations)
		for j := range times {
			t := time.Now()
			if _, err := g.do(r.as, r.query, r.vars); err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			times[j] = time.Since(t)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		slices.Sort(times)
		out[i] = times
	}
	return out, nil
}

// shuffleRun is one timed shuffleTasks request and its outcome.
type shuffleRun struct {
	took       time.Duration
	reassigned int
	err        error
}

func (r shuffleRun) String() string {
	if r.err != nil {
		return fmt.Sprintf("**failed** after %s (%.160s)", secs(r.took), r.err)
	}
	return secs(r.took)
}

// shuffle runs shuffleTasks as the admin and returns how long the request took.
func (g *scaleGateway) shuffle() (time.Duration, int, error) {
	if err := g.login(context.Background(), scaleAdminName); err != nil {
		return 0, 0, err
	}
	t := time.Now()
	data, err := g.do(scaleAdminName, `mutation{shuffleTasks{reassigned}}`, nil)
	took := time.Since(t)
	if err != nil {
		return took, 0, err
	}
	n, err := intAt(data, []string{"shuffleTasks", "reassigned"})
	return took, n, err
}

// intAt is the integer at path in data, or the length of the list there.
func intAt(data json.RawMessage, path []string) (int, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, err
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("no object at %q", k)
		}
		v = m[k]
	}
	switch x := v.(type) {
	case float64:
		return int(x), nil
	case []any:
		return len(x), nil
	default:
		return 0, fmt.Errorf("%v is neither a number nor a list", path)
	}
}

func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f < 10:
		return strconv.FormatFloat(f, 'f', 2, 64) + " ms"
	case f < 100:
		return strconv.FormatFloat(f, 'f', 1, 64) + " ms"
	default:
		return strconv.FormatFloat(f, 'f', 0, 64) + " ms"
	}
}

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s" }

func writeScaleReport(out io.Writer, cfg scaleConfig, b scaleBuild, reads []scaleRead, before, after [][]time.Duration, shuffles [2]shuffleRun, loads [4]string) {
	var w strings.Builder
	fmt.Fprintf(&w, "\n## %d tasks, %s\n\n", b.n, cfg.dialect)
	if b.reused {
		fmt.Fprintf(&w, "Database kept from an earlier run (%d shuffles there before this run's two); after-load hooks %s.\n", b.earlierShuffles, secs(b.hooks))
	} else {
		fmt.Fprintf(&w, "Built in **%s**: databases, popugs and replicas %s, tasks (CreateBulk) %s, ledger (accounting.ApplyBatch) %s, %d closes %s",
			secs(b.total), secs(b.popugs), secs(b.tasks), secs(b.ledger), scaleCloses(), secs(b.closes))
		if cfg.dialect == dialect.Postgres {
			fmt.Fprintf(&w, ", VACUUM ANALYZE %s", secs(b.vacuum))
		}
		fmt.Fprintf(&w, ", after-load hooks %s.\n", secs(b.hooks))
	}
	for i, h := range afterLoad {
		fmt.Fprintf(&w, "- after load: %s %s\n", h.name, secs(b.hookTimes[i]))
	}
	fmt.Fprintf(&w, "\nInvariants hold: %d tasks (%d open, %d done), %d ledger entries (%d payouts), every balance the sum of its entries, one fee per task, one reward per completed task.\n",
		b.n, b.open, b.done, b.entries, b.payouts)
	fmt.Fprintf(&w, "\nLoad average: %s at start, %s built, %s after the first reads, %s at the end.\n\n", loads[0], loads[1], loads[2], loads[3])
	w.WriteString("| read | p50 | p95 | p50 after two shuffles | p95 after two shuffles |\n|---|--:|--:|--:|--:|\n")
	for i, r := range reads {
		fmt.Fprintf(&w, "| %s | %s | %s | %s | %s |\n", r.name,
			ms(percentile(before[i], 50)), ms(percentile(before[i], 95)), ms(percentile(after[i], 50)), ms(percentile(after[i], 95)))
	}
	fmt.Fprintf(&w, "\nshuffleTasks (%d open tasks, no VACUUM between): first %s, second %s.\n", b.open, shuffles[0], shuffles[1])
	io.WriteString(out, w.String())
}
