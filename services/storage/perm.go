package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Modes of what aTES keeps at rest (R-SEC-5): readable by the service's user only.
const (
	// PrivateDir is the mode of the data directory and the mailbox folder.
	PrivateDir fs.FileMode = 0o700
	// PrivateFile is the mode of database files, their -wal and -shm, and stored emails.
	PrivateFile fs.FileMode = 0o600
)

// PrivateDirectory creates dir (and its missing parents) with mode 0700 whatever the umask,
// and tightens it to 0700 when it exists with more. A directory the service does not own, or
// one with the sticky bit (a shared one such as /tmp), is left as it is: it is not aTES's to
// close (R-SEC-5).
func PrivateDirectory(dir string) error {
	info, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, PrivateDir); err != nil {
			return fmt.Errorf("storage: creating %s: %w", dir, err)
		}
		// MkdirAll's mode passed through the umask: set it exactly.
		return chmod(dir, PrivateDir)
	}
	if err != nil {
		return fmt.Errorf("storage: %s: %w", dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("storage: %s is not a directory", dir)
	}
	if info.Mode()&os.ModeSticky != 0 || !ownedByUs(info) || info.Mode().Perm() == PrivateDir {
		return nil
	}
	return chmod(dir, PrivateDir)
}

// PrivateFiles creates path with mode 0600 when missing (whatever the umask) and tightens it
// and the given siblings (path+suffix, when they exist) to 0600 (R-SEC-5).
func PrivateFiles(path string, suffixes ...string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, PrivateFile)
	if err != nil {
		return fmt.Errorf("storage: creating %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storage: creating %s: %w", path, err)
	}
	if err := chmod(path, PrivateFile); err != nil {
		return err
	}
	for _, s := range suffixes {
		err := chmod(path+s, PrivateFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// TightenFiles sets every regular file in dir whose name ends in ext to 0600 (R-SEC-5).
func TightenFiles(dir, ext string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("storage: reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || filepath.Ext(e.Name()) != ext {
			continue
		}
		if err := chmod(filepath.Join(dir, e.Name()), PrivateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func chmod(path string, mode fs.FileMode) error {
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("storage: restricting %s to its owner: %w", path, err)
	}
	return nil
}

func ownedByUs(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
