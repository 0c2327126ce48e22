package store

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// Size returns the bytes the store occupies on disk: lsm is Badger's
// sorted tables (.sst), vlog its logs (the value log and the memtables'
// write-ahead logs, .vlog and .mem). Badger preallocates log files
// sparsely, so where the platform says, the figures are blocks allocated
// rather than apparent lengths. An in-memory or closed store reports 0, 0.
func (s *Store) Size() (lsm, vlog int64) {
	if err := s.enter(); err != nil {
		return 0, 0
	}
	defer s.leave()
	if s.opts.InMemory {
		return 0, 0
	}
	// Files vanish under the walk as Badger compacts; skip them.
	filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch filepath.Ext(path) {
		case ".sst":
			lsm += diskBytes(info)
		case ".vlog", ".mem":
			vlog += diskBytes(info)
		}
		return nil
	})
	return lsm, vlog
}

// Filesystem is the room on the filesystem that holds a store's directory.
type Filesystem struct {
	Avail uint64 // bytes an unprivileged writer may still use
	Size  uint64 // bytes in all
}

// Filesystem reports the room on the filesystem of the store's directory.
// An in-memory store has none (an error), and on platforms without
// statfs it is errors.ErrUnsupported.
func (s *Store) Filesystem() (Filesystem, error) {
	if err := s.enter(); err != nil {
		return Filesystem{}, err
	}
	defer s.leave()
	if s.opts.InMemory {
		return Filesystem{}, errors.New("store: in memory, on no filesystem")
	}
	fs, err := statFilesystem(s.opts.Dir)
	if err != nil {
		return Filesystem{}, fmt.Errorf("store: %w", err)
	}
	return fs, nil
}
