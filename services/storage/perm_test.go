package storage_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/uberpopug/ates/services/storage"
)

// withUmask sets the process's umask for the test (not parallel: the umask is process-wide).
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mustMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm() | (info.Mode() & os.ModeSticky); got != want {
		t.Errorf("%s has mode %v, want %v", filepath.Base(path), got, want)
	}
}

// mustWrite makes SQLite write (and so create its -wal and -shm).
func mustWrite(t *testing.T, db *storage.DB) {
	t.Helper()
	if _, err := db.SQL.Exec(`CREATE TABLE IF NOT EXISTS t (x INTEGER); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteFilesArePrivate: R-SEC-5 — under umask 0, the data directory is created 0700 and
// the database file, its -wal and its -shm 0600.
func TestSQLiteFilesArePrivate(t *testing.T) {
	withUmask(t, 0)
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(context.Background(), storage.Config{DataDir: dir}, "auth")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustWrite(t, db)
	mustMode(t, dir, 0o700)
	for _, f := range []string{"auth.db", "auth.db-wal", "auth.db-shm"} {
		mustMode(t, filepath.Join(dir, f), 0o600)
	}
	// A database opened by path in a missing directory: the same.
	nested := filepath.Join(t.TempDir(), "a", "b")
	db2, err := storage.OpenSQLite(context.Background(), filepath.Join(nested, "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	mustWrite(t, db2)
	mustMode(t, nested, 0o700)
	for _, f := range []string{"x.db", "x.db-wal", "x.db-shm"} {
		mustMode(t, filepath.Join(nested, f), 0o600)
	}
}

// TestSQLiteFilesAreTightened: R-SEC-5 — a data directory and database files that exist
// world-readable are tightened when opened; a shared (sticky) directory is left alone.
func TestSQLiteFilesAreTightened(t *testing.T) {
	withUmask(t, 0)
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(context.Background(), storage.Config{DataDir: dir}, "tasks")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, db)
	if err := db.SQL.Close(); err != nil {
		t.Fatal(err)
	}
	// Leave a -wal and -shm behind as a crash would, and open everything up.
	for _, f := range []string{"tasks.db-wal", "tasks.db-shm"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tasks.db", "tasks.db-wal", "tasks.db-shm"} {
		if err := os.Chmod(filepath.Join(dir, f), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	db, err = storage.Open(context.Background(), storage.Config{DataDir: dir}, "tasks")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustMode(t, dir, 0o700)
	for _, f := range []string{"tasks.db", "tasks.db-wal", "tasks.db-shm"} {
		mustMode(t, filepath.Join(dir, f), 0o600)
	}

	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	db3, err := storage.Open(context.Background(), storage.Config{DataDir: shared}, "auth")
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	mustMode(t, shared, 0o777|os.ModeSticky)
	mustMode(t, filepath.Join(shared, "auth.db"), 0o600)
}
