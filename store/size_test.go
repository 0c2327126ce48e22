package store

import (
	"errors"
	"runtime"
	"testing"
)

// TestFilesystem: a store on disk reports the room on its directory's
// filesystem (where the platform has statfs); one in memory, or closed,
// reports an error rather than a zero that would read as a full disk.
func TestFilesystem(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := s.Filesystem()
	switch {
	case errors.Is(err, errors.ErrUnsupported) && runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd":
		t.Logf("no statfs on %s", runtime.GOOS)
	case err != nil:
		t.Fatal(err)
	case fs.Size == 0 || fs.Avail == 0 || fs.Avail > fs.Size:
		t.Errorf("Filesystem = %+v: want a size, and free bytes within it", fs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fs, err := s.Filesystem(); err == nil {
		t.Errorf("Filesystem of a closed store = %+v, nil", fs)
	}

	m, err := Open(Options{InMemory: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if fs, err := m.Filesystem(); err == nil {
		t.Errorf("Filesystem of a store in memory = %+v, nil", fs)
	}
}
