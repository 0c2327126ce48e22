//go:build darwin || freebsd

package store

import (
	"os"
	"syscall"
)

// statFilesystem is statfs(2) of dir.
func statFilesystem(dir string) (Filesystem, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Filesystem{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	unit := uint64(st.Bsize)
	return Filesystem{Avail: uint64(st.Bavail) * unit, Size: uint64(st.Blocks) * unit}, nil
}
