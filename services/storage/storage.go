// Package storage opens the database of one bounded context: a SQLite file under the data
// directory (the embedded default, R-OPS-1) or a PostgreSQL database of its own, created when
// missing (R-OPS-2, R-OPS-3). Contexts never share a database.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/lib/pq"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// DB is an open context database.
type DB struct {
	// SQL is the connection pool.
	SQL *sql.DB
	// Dialect is dialect.SQLite or dialect.Postgres.
	Dialect string
	// Name identifies the database in logs: a file path or a PostgreSQL database name.
	Name string
	// URL is the PostgreSQL connection URL, for a session outside the pool (an outbox relay's
	// LISTEN); empty for SQLite. It may hold a password: never log it.
	URL string
}

// Driver returns an Ent driver over the pool, for the context's generated client.
func (db *DB) Driver() *entsql.Driver { return entsql.OpenDB(db.Dialect, db.SQL) }

// Close closes the pool.
func (db *DB) Close() error { return db.SQL.Close() }

// Config says where the contexts' databases live.
type Config struct {
	// DataDir holds one SQLite file per context when no PostgreSQL URL applies.
	DataDir string
	// DatabaseURL is postgres://…/NAME: context c then uses database NAME_c on that server.
	DatabaseURL string
	// Overrides maps a context name to its own database URL, used as is.
	Overrides map[string]string
}

// Open opens (creating when missing) the database of the named context.
func Open(ctx context.Context, cfg Config, contextName string) (*DB, error) {
	if u := cfg.Overrides[contextName]; u != "" {
		return OpenURL(ctx, u)
	}
	if cfg.DatabaseURL != "" {
		u, err := ContextURL(cfg.DatabaseURL, contextName)
		if err != nil {
			return nil, err
		}
		return OpenURL(ctx, u)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("storage: neither a data directory nor a database URL is configured")
	}
	// The data directory holds the databases and the signing key: its owner's only (R-SEC-5).
	if err := PrivateDirectory(cfg.DataDir); err != nil {
		return nil, err
	}
	return OpenSQLite(ctx, filepath.Join(cfg.DataDir, contextName+".db"))
}

// ContextURL derives a context's database URL from postgres://…/NAME: the database NAME_context.
func ContextURL(base, contextName string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("storage: database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("storage: database URL must be postgres://…/NAME, got scheme %q", u.Scheme)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", errors.New("storage: database URL must name a database: postgres://…/NAME")
	}
	u.Path = "/" + name + "_" + contextName
	return u.String(), nil
}

// OpenURL opens a postgres:// URL (creating the database when missing) or a sqlite:// path.
func OpenURL(ctx context.Context, raw string) (*DB, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("storage: database URL: %w", err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return OpenPostgres(ctx, raw)
	case "sqlite", "file":
		return OpenSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(raw, u.Scheme+"://"), u.Scheme+":"))
	default:
		return nil, fmt.Errorf("storage: unsupported database URL scheme %q", u.Scheme)
	}
}

// sqliteFiles are the files SQLite keeps beside a database in WAL mode.
var sqliteFiles = []string{"-wal", "-shm", "-journal"}

// OpenSQLite opens (creating) a SQLite database file with foreign keys, WAL and a busy timeout.
// The file and its -wal and -shm are its owner's only (0600), also when they existed with a
// wider mode; a missing directory is created 0700 (R-SEC-5).
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(filepath.Dir(path)); errors.Is(err, os.ErrNotExist) {
		if err := PrivateDirectory(filepath.Dir(path)); err != nil {
			return nil, err
		}
	}
	// SQLite creates -wal and -shm with the database file's mode.
	if err := PrivateFiles(path, sqliteFiles...); err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	// SQLite has one writer at a time; a small pool keeps readers concurrent under WAL.
	db.SetMaxOpenConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	// The first connection made -wal and -shm: make sure of their mode too.
	if err := PrivateFiles(path, sqliteFiles...); err != nil {
		db.Close()
		return nil, err
	}
	return &DB{SQL: db, Dialect: dialect.SQLite, Name: path}, nil
}

// OpenPostgres opens a PostgreSQL database, creating it on its server when missing.
func OpenPostgres(ctx context.Context, raw string) (*DB, error) {
	if err := ensurePostgresDatabase(ctx, raw); err != nil {
		return nil, err
	}
	db, err := sql.Open("postgres", withDefaults(raw))
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: connecting to PostgreSQL: %w", err)
	}
	return &DB{SQL: db, Dialect: dialect.Postgres, Name: databaseName(raw), URL: raw}, nil
}

// DefaultConnectTimeout bounds establishing a PostgreSQL connection (lib/pq's connect_timeout,
// in whole seconds) unless the URL sets one: without it a connection to a server that does not
// answer waits for the operating system's TCP timeout, minutes, and every request waiting for a
// pooled connection with it; with it an outage is an error the gateway answers UNAVAILABLE
// (R-REL-4).
const DefaultConnectTimeout = 5 * time.Second

// withDefaults adds the connection parameters aTES relies on unless the URL sets them:
// binary parameters (withBinaryParameters) and a bounded connect timeout
// (DefaultConnectTimeout).
func withDefaults(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // sql.Open reports it
	}
	q := u.Query()
	if q.Has("connect_timeout") {
		return withBinaryParameters(raw)
	}
	q.Set("connect_timeout", fmt.Sprint(int(DefaultConnectTimeout/time.Second)))
	u.RawQuery = q.Encode()
	return withBinaryParameters(u.String())
}

// withBinaryParameters turns lib/pq's binary_parameters on unless the URL sets it: a statement
// with parameters then costs one round trip instead of two (lib/pq otherwise prepares it
// first), and []byte parameters travel as binary, which only bytea columns receive here.
func withBinaryParameters(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw // sql.Open reports it
	}
	q := u.Query()
	if q.Has("binary_parameters") {
		return raw
	}
	q.Set("binary_parameters", "yes")
	u.RawQuery = q.Encode()
	return u.String()
}

func databaseName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// ensurePostgresDatabase creates the URL's database through the server's maintenance database.
func ensurePostgresDatabase(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("storage: database URL: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return errors.New("storage: PostgreSQL URL names no database")
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", withDefaults(admin.String()))
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	defer db.Close()
	var exists bool
	err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("storage: connecting to PostgreSQL: %w", err)
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	if err == nil {
		return nil
	}
	if !createdMeanwhile(err) {
		return fmt.Errorf("storage: creating database %s: %w", name, err)
	}
	// Another process created it at the same moment (gateways and workers start together,
	// R-OPS-2): it exists now, which is all this process needs.
	err = db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists)
	if err != nil {
		return fmt.Errorf("storage: connecting to PostgreSQL: %w", err)
	}
	if !exists {
		return fmt.Errorf("storage: creating database %s: another process was creating it and it does not exist", name)
	}
	return nil
}

// createdMeanwhile reports whether CREATE DATABASE failed because another session created the
// database concurrently: 42P04 duplicate_database when that one committed first, 23505 on
// pg_database's name index when both inserted the catalogue row at once.
func createdMeanwhile(err error) bool {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return false
	}
	return pqErr.Code == "42P04" || (pqErr.Code == "23505" && pqErr.Constraint == "pg_database_datname_index")
}

// migrationLock is the PostgreSQL advisory lock key that serializes schema migrations.
const migrationLock = 0x61746573 // "ates"

// migrateMu serializes migrations within a process: Ent's Schema.Create shares package state.
var migrateMu sync.Mutex

// Migrate runs fn (a context's schema migration) alone: one at a time in this process and, on
// PostgreSQL, across processes (several gateways and workers start at once, R-OPS-2).
func (db *DB) Migrate(ctx context.Context, fn func(ctx context.Context) error) error {
	migrateMu.Lock()
	defer migrateMu.Unlock()
	if db.Dialect != dialect.Postgres {
		return fn(ctx)
	}
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		return fmt.Errorf("storage: migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("storage: migration lock: %w", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock)
	}()
	return fn(ctx)
}

// Rebind adapts a query written with PostgreSQL's $n placeholders to the dialect: SQLite
// numbers them ?n. Only a '$' followed by a digit outside quotes ('…' literals, "…"
// identifiers) and comments is a placeholder; every other character is kept as written.
func Rebind(d, q string) string {
	if d != dialect.SQLite || !strings.Contains(q, "$") {
		return q
	}
	b := []byte(q)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\'' || c == '"':
			// A quoted run ends at the next unpaired quote of its kind ('' inside '…' is one ').
			for i++; i < len(b) && b[i] != c; i++ {
			}
		case c == '-' && i+1 < len(b) && b[i+1] == '-':
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := strings.Index(q[i+2:], "*/")
			if end < 0 {
				return string(b)
			}
			i += end + 3
		case c == '$' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9':
			b[i] = '?'
		}
	}
	return string(b)
}
