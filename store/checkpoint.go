package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// The store keeps the last checkpoint the node signed, so that the node
// never signs two different trees of one size, even across a crash or a
// restart. It is one key:
//
//	c -> 1 | size (8 bytes, big-endian) | root (32 bytes) | note bytes
//
// The key does not go through the group-commit writer: it is written in
// a transaction of its own, synchronously (SyncWrites), at a version one
// above its previous one. Its versions therefore rise independently of
// the records' commit timestamps; it is read at the highest timestamp,
// never at the readers' snapshot. Only SaveCheckpoint writes it, under
// checkpointMu, so its versions never repeat.

const (
	prefixCheckpoint byte = 'c'
	// checkpointFormat is the first byte of the checkpoint value.
	checkpointFormat byte = 1
)

var (
	// ErrCheckpointMismatch is returned when a checkpoint and the log
	// disagree: the log is shorter than the checkpoint's size, or its tree
	// of that size has another root. For the kept checkpoint that means
	// the log lost or changed records the node signed.
	ErrCheckpointMismatch = errors.New("store: checkpoint disagrees with the log")
	// ErrCheckpointConflict is returned by SaveCheckpoint for a checkpoint
	// older than the kept one, or of the same size with another root.
	ErrCheckpointConflict = errors.New("store: checkpoint conflicts with the kept one")
)

// checkpointMu serialises SaveCheckpoint (read the key's version, write
// the next one). It is shared by every Store in the process; checkpoints
// are written seconds apart, so that costs nothing.
var checkpointMu sync.Mutex

func checkpointKey() []byte { return []byte{prefixCheckpoint} }

// Checkpoint is a signed checkpoint as the store keeps it: the tree it
// covers and the signed note. The note's format is the node's business;
// the store checks only the tree.
type Checkpoint struct {
	Size uint64
	Root tlog.Hash
	Note []byte
}

func (cp *Checkpoint) marshal() []byte {
	b := make([]byte, 0, 1+8+len(cp.Root)+len(cp.Note))
	b = append(b, checkpointFormat)
	b = binary.BigEndian.AppendUint64(b, cp.Size)
	b = append(b, cp.Root[:]...)
	return append(b, cp.Note...)
}

func (cp *Checkpoint) unmarshal(v []byte) error {
	const head = 1 + 8 + len(tlog.Hash{})
	if len(v) <= head || v[0] != checkpointFormat || len(v)-head > protocol.MaxCheckpointNote {
		return fmt.Errorf("store: checkpoint value of %d bytes is malformed", len(v))
	}
	cp.Size = binary.BigEndian.Uint64(v[1:])
	copy(cp.Root[:], v[9:head])
	cp.Note = bytes.Clone(v[head:])
	return nil
}

// LastCheckpoint returns the checkpoint SaveCheckpoint last kept; ok is
// false when there is none. It checks the checkpoint against the log and
// returns an error wrapping ErrCheckpointMismatch when they disagree,
// which an intact store never does: the node refuses to start on it.
func (s *Store) LastCheckpoint() (cp Checkpoint, ok bool, err error) {
	if err := s.enter(); err != nil {
		return Checkpoint{}, false, err
	}
	defer s.leave()
	cp, _, ok, err = s.readCheckpoint()
	if err != nil || !ok {
		return Checkpoint{}, false, err
	}
	if err := s.checkTree(cp.Size, cp.Root); err != nil {
		return Checkpoint{}, false, fmt.Errorf("the last signed checkpoint: %w", err)
	}
	return cp, true, nil
}

// SaveCheckpoint keeps cp as the last signed checkpoint and returns once it
// is durable. cp must cover a tree of the durable log (1 <= Size <= Len,
// Root its root), else the error wraps ErrCheckpointMismatch; it must not
// be older than the kept checkpoint nor have the kept size with another
// root, else the error wraps ErrCheckpointConflict. Saving the kept tree
// again replaces its note (with the same signature and more cosignatures,
// say) and is otherwise a no-op.
func (s *Store) SaveCheckpoint(cp Checkpoint) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if len(cp.Note) == 0 || len(cp.Note) > protocol.MaxCheckpointNote {
		return fmt.Errorf("store: checkpoint note of %d bytes (want 1 to %d)", len(cp.Note), protocol.MaxCheckpointNote)
	}
	if err := s.checkTree(cp.Size, cp.Root); err != nil {
		return err
	}
	checkpointMu.Lock()
	defer checkpointMu.Unlock()
	kept, version, ok, err := s.readCheckpoint()
	if err != nil {
		return err
	}
	if ok {
		switch {
		case cp.Size < kept.Size:
			return fmt.Errorf("%w: size %d is older than the kept size %d", ErrCheckpointConflict, cp.Size, kept.Size)
		case cp.Size == kept.Size && cp.Root != kept.Root:
			return fmt.Errorf("%w: size %d with root %s, kept with root %s", ErrCheckpointConflict, cp.Size, cp.Root, kept.Root)
		case cp.Size == kept.Size && bytes.Equal(cp.Note, kept.Note):
			return nil
		}
	}
	txn := s.db.NewTransactionAt(version, true)
	defer txn.Discard()
	if err := txn.Set(checkpointKey(), cp.marshal()); err != nil {
		return fmt.Errorf("store: save checkpoint: %w", err)
	}
	// A nil callback makes CommitAt wait for the (synced) write.
	if err := txn.CommitAt(version+1, nil); err != nil {
		return fmt.Errorf("store: save checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads the checkpoint key at the highest timestamp (see
// above), with its version.
func (s *Store) readCheckpoint() (cp Checkpoint, version uint64, ok bool, err error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(checkpointKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return cp, 0, false, nil
	}
	if err != nil {
		return cp, 0, false, fmt.Errorf("store: read checkpoint: %w", err)
	}
	if err := item.Value(cp.unmarshal); err != nil {
		return cp, 0, false, err
	}
	return cp, item.Version(), true, nil
}

// checkTree checks that the durable log has a tree of size with root.
func (s *Store) checkTree(size uint64, root tlog.Hash) error {
	return s.view(func(txn *badger.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		if size == 0 || size > m.seq {
			return fmt.Errorf("%w: a checkpoint of size %d, but the log has %d records", ErrCheckpointMismatch, size, m.seq)
		}
		got, err := tlog.TreeHash(int64(size), txnHashReader{txn})
		if err != nil {
			return err
		}
		if got != root {
			return fmt.Errorf("%w: the checkpoint of size %d has root %s, the log's tree of that size %s", ErrCheckpointMismatch, size, root, got)
		}
		return nil
	})
}
