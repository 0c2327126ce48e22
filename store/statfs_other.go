//go:build !linux && !darwin && !freebsd

package store

import "errors"

// statFilesystem is not available here.
func statFilesystem(string) (Filesystem, error) {
	return Filesystem{}, errors.ErrUnsupported
}
