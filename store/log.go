package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// The store keeps the node's Merkle log (RFC 6962, as golang.org/x/mod's
// sumdb/tlog computes it): leaf i is the binary CID of the record with seq
// i+1, and the tree's stored hashes (tlog.StoredHashIndex) live under
//
//	h | index (8 bytes, big-endian) -> 32-byte hash
//
// written in the same transaction as the record, so the log and the record
// set can never disagree, even across a crash.

const prefixHash byte = 'h'

func hashKey(index int64) []byte {
	k := make([]byte, 9)
	k[0] = prefixHash
	binary.BigEndian.PutUint64(k[1:], uint64(index))
	return k
}

// LeafHash is the log's hash of a record: tlog.RecordHash of its binary
// CID.
func LeafHash(r *protocol.Record) tlog.Hash { return tlog.RecordHash(r.CID().Bytes()) }

// appendLeaf stores the log hashes that leaf seq-1 (record r) adds.
func appendLeaf(txn *badger.Txn, hr *stagingHashReader, r *protocol.Record, seq uint64) error {
	n := int64(seq - 1)
	hashes, err := tlog.StoredHashesForRecordHash(n, LeafHash(r), hr)
	if err != nil {
		return fmt.Errorf("log: leaf %d: %w", n, err)
	}
	base := tlog.StoredHashIndex(0, n)
	for i, h := range hashes {
		idx := base + int64(i)
		if err := txn.Set(hashKey(idx), h[:]); err != nil {
			return err
		}
		hr.staged[idx] = h
	}
	return nil
}

// stagingHashReader reads stored hashes for the writer: those staged in
// the transaction being built, those of commits still in flight, those
// written recently, and the rest from Badger.
type stagingHashReader struct {
	txn     *badger.Txn
	staged  map[int64]tlog.Hash
	pending *pendingSet
}

func (r *stagingHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		if h, ok := r.staged[idx]; ok {
			out[i] = h
			continue
		}
		if h, ok := r.pending.hashes[idx]; ok {
			out[i] = h
			continue
		}
		if h, ok := r.pending.recent[idx]; ok {
			out[i] = h
			continue
		}
		h, err := readHash(r.txn, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func readHash(txn *badger.Txn, idx int64) (tlog.Hash, error) {
	var h tlog.Hash
	item, err := txn.Get(hashKey(idx))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return h, fmt.Errorf("store: log hash %d missing", idx)
	}
	if err != nil {
		return h, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != len(h) {
			return fmt.Errorf("store: log hash %d has %d bytes", idx, len(v))
		}
		copy(h[:], v)
		return nil
	})
	return h, err
}

// txnHashReader reads stored hashes from a read transaction.
type txnHashReader struct{ txn *badger.Txn }

func (r txnHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		h, err := readHash(r.txn, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// Tree is a tree head of the log: its size (number of records) and root
// hash.
type Tree struct {
	Size uint64
	Root tlog.Hash
}

// TreeHead returns the log's tree at the last durable commit.
func (s *Store) TreeHead() (Tree, error) {
	if err := s.enter(); err != nil {
		return Tree{}, err
	}
	defer s.leave()
	// Every decision asks; between two commits the answer is the same.
	readTs := s.readTs.Load()
	if h := s.treeHead.Load(); h != nil && h.readTs == readTs {
		return h.tree, nil
	}
	var t Tree
	err := s.viewAt(readTs, func(txn *badger.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		t.Size = m.seq
		if t.Size == 0 {
			return nil // the empty tree's hash is the zero Hash, as tlog has it
		}
		t.Root, err = tlog.TreeHash(int64(t.Size), txnHashReader{txn})
		return err
	})
	if err == nil {
		s.treeHead.Store(&treeAt{readTs: readTs, tree: t})
	}
	return t, err
}

// treeAt is the tree head as of one read timestamp.
type treeAt struct {
	readTs uint64
	tree   Tree
}

// InclusionProof proves that the record with seq is in the tree of the
// given size (tlog.ProveRecord; check with tlog.CheckRecord).
func (s *Store) InclusionProof(seq, size uint64) (tlog.RecordProof, error) {
	if seq == 0 || seq > size {
		return nil, fmt.Errorf("%w: seq %d is not in a tree of size %d", ErrInvalidQuery, seq, size)
	}
	var p tlog.RecordProof
	err := s.readLog(size, func(r tlog.HashReader) (err error) {
		p, err = tlog.ProveRecord(int64(size), int64(seq-1), r)
		return err
	})
	return p, err
}

// ConsistencyProof proves that the tree of size from is a prefix of the
// tree of size to (tlog.ProveTree; check with tlog.CheckTree).
func (s *Store) ConsistencyProof(from, to uint64) (tlog.TreeProof, error) {
	if from == 0 || from > to {
		return nil, fmt.Errorf("%w: no consistency proof from size %d to %d", ErrInvalidQuery, from, to)
	}
	var p tlog.TreeProof
	err := s.readLog(to, func(r tlog.HashReader) (err error) {
		p, err = tlog.ProveTree(int64(to), int64(from), r)
		return err
	})
	return p, err
}

// TreeHash returns the root of the tree of the given size, which must not
// exceed the log's.
func (s *Store) TreeHash(size uint64) (tlog.Hash, error) {
	var h tlog.Hash
	err := s.readLog(size, func(r tlog.HashReader) (err error) {
		h, err = tlog.TreeHash(int64(size), r)
		return err
	})
	return h, err
}

func (s *Store) readLog(size uint64, fn func(tlog.HashReader) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.view(func(txn *badger.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		if size > m.seq {
			return fmt.Errorf("%w: the log has %d records, not %d", ErrInvalidQuery, m.seq, size)
		}
		return fn(txnHashReader{txn})
	})
}

// readMeta reads the meta key in txn; a store with no records has none.
func readMeta(txn *badger.Txn) (meta, error) {
	var m meta
	item, err := txn.Get(metaKey())
	if errors.Is(err, badger.ErrKeyNotFound) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	err = item.Value(m.unmarshal)
	return m, err
}
