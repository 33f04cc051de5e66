package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// usesDataDir reports whether some context keeps its database under ATES_DATA_DIR (SQLite, the
// embedded default).
func (c Config) usesDataDir() bool {
	if c.DatabaseURL != "" {
		return false
	}
	overrides := c.databaseOverrides()
	for _, name := range Contexts {
		if overrides[name] == "" {
			return true
		}
	}
	return false
}

// lockDataDir takes the data directory for this process: the embedded default's databases and
// its in-process event bus belong to one process, and a second one on the same directory would
// consume none of the first one's events. The lock is the kernel's (flock), so it goes with the
// process however that ends.
func lockDataDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "ates.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another aTES process is running on the data directory %s (ATES_DATA_DIR): stop it, or give this one a directory of its own", dir)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
