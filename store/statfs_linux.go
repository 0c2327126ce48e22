package store

import (
	"os"
	"syscall"
)

// statFilesystem is statfs(2) of dir, in the units df uses: f_frsize
// where the kernel gives one, else f_bsize.
func statFilesystem(dir string) (Filesystem, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Filesystem{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
	}
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return Filesystem{Avail: st.Bavail * unit, Size: st.Blocks * unit}, nil
}
