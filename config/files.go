package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// WriteFileAtomic writes data to path so that path holds either its old
// content or all of data, whatever happens: it writes a temporary file in the
// same directory, syncs it, sets perm, renames it over path and syncs the
// directory.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, false)
}

// writeFileNew is WriteFileAtomic that refuses to replace an existing path;
// the error then wraps fs.ErrExist. The complete file appears at once (a
// hard link of the synced temporary file), so a crash never leaves a
// half-written key behind.
func writeFileNew(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm, true)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir := filepath.Dir(path)
	if exclusive {
		// Fail early, before any temporary file; the link below still
		// settles a race.
		if _, err := os.Lstat(path); err == nil {
			return existsError(path)
		}
	}
	// CreateTemp makes the file 0600, so data is never readable by others
	// before the final mode is set.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			tmp.Close()
		}
		if err != nil || exclusive {
			os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	err = tmp.Close()
	tmp = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if exclusive {
		if err := os.Link(tmpName, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return existsError(path)
			}
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

func existsError(path string) error {
	return fmt.Errorf("%s already exists; refusing to overwrite it: %w", path, fs.ErrExist)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for sync there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err // EINVAL: the file system does not sync directories
	}
	return nil
}

// ErrWritable is the error of a config or federation file that any user
// may write: either decides whom the node trusts. (A file its group may
// write is accepted: with a group of one user, the default of many
// systems, that is its owner.)
var ErrWritable = errors.New("writable by others")

// checkNotWritable refuses a file others may write (never on Windows,
// whose modes do not say).
func checkNotWritable(what, path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil // reading it reports this
	}
	if perm := fi.Mode().Perm(); perm&0o002 != 0 {
		return fmt.Errorf("%s %s: mode %04o: %w; whoever may write it decides whom the node trusts (run chmod o-w %s)",
			what, path, perm, ErrWritable, path)
	}
	return nil
}
