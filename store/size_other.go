//go:build !unix

package store

import "io/fs"

// diskBytes is the space a file takes on disk; without block counts, its
// length.
func diskBytes(info fs.FileInfo) int64 { return info.Size() }
