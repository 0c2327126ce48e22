package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// The store keeps the node's Merkle log (RFC 6962, as golang.org/x/mod's
// sumdb/tlog computes it): leaf n is the binary CID of the record with seq
// n+1. The stored hashes that leaf n adds (tlog.StoredHashes: its own hash,
// then one for each subtree it completes, by level) follow the CID in the
// value of the record's seq key:
//
//	s | seq -> cid | hash at level 0 | hash at level 1 | ...  (32 bytes each)
//
// So the log costs no key of its own, and it is written in the same
// transaction as the record: the log and the record set can never
// disagree, even across a crash. Stored hash (level L, node m) is the L-th
// hash of leaf (m+1)·2^L − 1, the last leaf under that node.

// LeafHash is the log's hash of a record: tlog.RecordHash of its binary
// CID.
func LeafHash(r *protocol.Record) tlog.Hash { return tlog.RecordHash(r.CID().Bytes()) }

// seqValue is the value of the seq key of c, with the stored hashes of its
// leaf.
func seqValue(c cid.Cid, hashes []tlog.Hash) []byte {
	v := make([]byte, 0, c.ByteLen()+len(hashes)*len(tlog.Hash{}))
	v = append(v, c.Bytes()...)
	for _, h := range hashes {
		v = append(v, h[:]...)
	}
	return v
}

// splitSeqValue returns the CID of a seq value and the stored hashes that
// follow it; the hashes alias v.
func splitSeqValue(v []byte) (cid.Cid, []byte, error) {
	n, c, err := cid.CidFromBytes(v)
	if err != nil {
		return cid.Undef, nil, err
	}
	if (len(v)-n)%len(tlog.Hash{}) != 0 {
		return cid.Undef, nil, fmt.Errorf("%d bytes of log hashes", len(v)-n)
	}
	return c, v[n:], nil
}

// leafOf returns the leaf whose seq value holds stored hash index, and the
// hash's position there.
func leafOf(index int64) (leaf int64, pos int) {
	level, n := tlog.SplitStoredHashIndex(index)
	return (n+1)<<level - 1, level
}

// txnHashReader reads stored hashes from a transaction.
type txnHashReader struct{ txn *badger.Txn }

func (r txnHashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		leaf, pos := leafOf(idx)
		item, err := r.txn.Get(seqKey(uint64(leaf) + 1))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil, fmt.Errorf("store: log hash %d: no record with seq %d", idx, leaf+1)
		}
		if err != nil {
			return nil, err
		}
		err = item.Value(func(v []byte) error {
			_, hashes, err := splitSeqValue(v)
			if err != nil {
				return err
			}
			if len(hashes) < (pos+1)*len(tlog.Hash{}) {
				return fmt.Errorf("%d log hashes, not %d", len(hashes)/len(tlog.Hash{}), pos+1)
			}
			copy(out[i][:], hashes[pos*len(tlog.Hash{}):])
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: seq %d: %w", leaf+1, err)
		}
	}
	return out, nil
}

// frontier is the right edge of the log's tree: for each level L, the hash
// of the last complete subtree at that level, node (L, size>>L − 1). That
// is every stored hash that appending a leaf or hashing the whole tree
// reads, so the writer keeps the log without reading Badger.
type frontier struct {
	size   int64
	hashes [64]tlog.Hash
}

// loadFrontier reads the right edge of the tree of the given size.
func loadFrontier(r tlog.HashReader, size int64) (frontier, error) {
	f := frontier{size: size}
	for level := 0; size>>level > 0; level++ {
		h, err := r.ReadHashes([]int64{tlog.StoredHashIndex(level, size>>level-1)})
		if err != nil {
			return f, err
		}
		f.hashes[level] = h[0]
	}
	return f, nil
}

func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		level, n := tlog.SplitStoredHashIndex(idx)
		if f.size>>level == 0 || n != f.size>>level-1 {
			return nil, fmt.Errorf("store: log hash (level %d, node %d) is not on the right edge of a tree of size %d", level, n, f.size)
		}
		out[i] = f.hashes[level]
	}
	return out, nil
}

// append adds a leaf and returns the stored hashes it adds.
func (f *frontier) append(leaf tlog.Hash) ([]tlog.Hash, error) {
	hashes, err := tlog.StoredHashesForRecordHash(f.size, leaf, f)
	if err != nil {
		return nil, fmt.Errorf("log: leaf %d: %w", f.size, err)
	}
	copy(f.hashes[:], hashes) // hashes[L] is node (L, size>>L) of the tree one leaf larger
	f.size++
	return hashes, nil
}

// tree returns the tree head.
func (f *frontier) tree() (Tree, error) {
	t := Tree{Size: uint64(f.size)}
	if f.size == 0 {
		return t, nil // the empty tree's hash is the zero Hash, as tlog has it
	}
	var err error
	t.Root, err = tlog.TreeHash(f.size, f)
	return t, err
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
	// The writer leaves each commit's tree in treeHead just before the
	// commit becomes visible; only a reader that loaded readTs in between
	// reads the tree from disk.
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
