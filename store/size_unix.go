//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// diskBytes is the space a file takes on disk: its allocated blocks,
// which for a sparse file are fewer than its length suggests.
func diskBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return info.Size()
}
