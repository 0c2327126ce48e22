package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// Format 1 (the first two sessions' stores) kept each stored hash of the
// log under a key of its own,
//
//	h | index (8 bytes) -> 32-byte hash
//
// and the seq key's value was the CID alone. Format 2 appends the hashes
// of each leaf to its seq value (log.go), two keys fewer per record.

const prefixHashV1 byte = 'h'

func hashKeyV1(index int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixHashV1}, uint64(index))
}

// upgradeBatch is how many records one upgrade transaction rewrites.
const upgradeBatch = 1000

// upgrade rewrites a format-1 store m describes in format 2, in
// transactions of upgradeBatch records, the last of which writes the new
// meta. A record already rewritten is left as it is, so an upgrade cut
// short by a crash resumes at the next Open.
func (s *Store) upgrade(m meta) error {
	s.log.Info("upgrading the on-disk format", "from", m.version, "to", formatVersion, "records", m.seq)
	for seq := uint64(1); seq <= m.seq; {
		readTs := s.readTs.Load()
		txn := s.db.NewTransactionAt(readTs, true)
		end := min(seq+upgradeBatch, m.seq+1)
		for ; seq < end; seq++ {
			if err := upgradeSeq(txn, seq); err != nil {
				txn.Discard()
				return fmt.Errorf("seq %d: %w", seq, err)
			}
		}
		if seq > m.seq {
			if err := txn.Set(metaKey(), m.marshal()); err != nil {
				txn.Discard()
				return err
			}
		}
		if err := txn.CommitAt(readTs+1, nil); err != nil {
			return err
		}
		s.readTs.Store(readTs + 1)
	}
	return nil
}

// upgradeSeq moves the stored hashes of seq's leaf into its seq value.
func upgradeSeq(txn *badger.Txn, seq uint64) error {
	item, err := txn.Get(seqKey(seq))
	if err != nil {
		return err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	c, hashes, err := splitSeqValue(v)
	if err != nil {
		return err
	}
	if len(hashes) > 0 {
		return nil // rewritten before a crash cut the upgrade short
	}
	n := int64(seq - 1)
	from, to := tlog.StoredHashIndex(0, n), tlog.StoredHashIndex(0, n+1)
	leaf := make([]tlog.Hash, 0, to-from)
	for idx := from; idx < to; idx++ {
		var h tlog.Hash
		item, err := txn.Get(hashKeyV1(idx))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("log hash %d missing", idx)
		}
		if err != nil {
			return err
		}
		if err := item.Value(func(v []byte) error {
			if len(v) != len(h) {
				return fmt.Errorf("log hash %d has %d bytes", idx, len(v))
			}
			copy(h[:], v)
			return nil
		}); err != nil {
			return err
		}
		leaf = append(leaf, h)
		if err := txn.Delete(hashKeyV1(idx)); err != nil {
			return err
		}
	}
	return txn.Set(seqKey(seq), seqValue(c, leaf))
}
