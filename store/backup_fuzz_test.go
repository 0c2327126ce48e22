package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// FuzzCheckBackup: a backup file is read from wherever the operator kept
// it; whatever its bytes, CheckBackup and Restore refuse them with
// ErrBackupFormat (or restore them) and never panic.
func FuzzCheckBackup(f *testing.F) {
	s, err := Open(Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := s.PutMany(context.Background(), manyRecords(f, 3)); err != nil {
		f.Fatal(err)
	}
	var good bytes.Buffer
	if _, err := s.Backup(context.Background(), &good); err != nil {
		f.Fatal(err)
	}
	s.Close()
	b := good.Bytes()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add(b[:64])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := CheckBackup(bytes.NewReader(data)); err != nil {
			if !errors.Is(err, ErrBackupFormat) {
				t.Fatalf("CheckBackup refused without ErrBackupFormat: %v", err)
			}
			return
		}
		if _, err := Restore(t.TempDir()+"/data", bytes.NewReader(data)); err != nil && !errors.Is(err, ErrBackupFormat) {
			t.Fatalf("Restore of a backup CheckBackup took: %v", err)
		}
	})
}
