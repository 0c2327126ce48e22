package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/entente-net/entente/protocol"
	"golang.org/x/mod/sumdb/tlog"
)

// Format 2 (sessions 3 and 4) held receipts of one decision each, whose
// bodies this build cannot decode: such a store is refused (ErrOldReceipts)
// and one without receipts is upgraded by rewriting its meta. Format 3
// adds decision blocks (b | cid -> bytes).
//
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
	if m.version == 3 {
		// Format 4 adds the register of decisions (decisions.go).
		if err := s.indexDecisions(); err != nil {
			return fmt.Errorf("store: upgrade: the register of decisions: %w", err)
		}
		return s.writeMeta(m)
	}
	if m.version == 2 {
		// Formats 3 and 4 add decision blocks and their register to what
		// format 2 holds, and a format-2 store with receipts is refused
		// before this: only the meta's version changes.
		return s.writeMeta(m)
	}
	for seq := uint64(1); seq <= m.seq; {
		err := s.upgradeTxn(func(txn *badger.Txn) error {
			end := min(seq+upgradeBatch, m.seq+1)
			for ; seq < end; seq++ {
				if err := upgradeSeq(txn, seq); err != nil {
					return fmt.Errorf("seq %d: %w", seq, err)
				}
			}
			if seq > m.seq {
				return txn.Set(metaKey(), m.marshal())
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// indexDecisions puts the decisions of every receipt held, whose blocks
// are held, into the register, in transactions of upgradeBatch receipts.
// Keys already written are written again, so an upgrade cut short resumes.
func (s *Store) indexDecisions() error {
	var after uint64
	for {
		entries, next, err := s.List(Query{Kind: protocol.KindReceipt, After: after, Limit: upgradeBatch})
		if err != nil {
			return err
		}
		err = s.upgradeTxn(func(txn *badger.Txn) error {
			for _, e := range entries {
				body, _ := e.Record.Receipt()
				for item, l := range body.Decisions {
					it, err := txn.Get(blockKey(l.Cid))
					if errors.Is(err, badger.ErrKeyNotFound) {
						continue // another node's receipt, its block not fetched
					}
					if err != nil {
						return err
					}
					var blk *protocol.DecisionBlock
					if err := it.Value(func(v []byte) error {
						b, err := blockBytes(v)
						if err == nil {
							blk, err = protocol.DecodeDecisionBlock(b)
						}
						return err
					}); err != nil {
						return fmt.Errorf("receipt %s, decision %d: %w", e.Record.CID(), item, err)
					}
					if err := setDecision(txn, e.Seq, item, l.Cid, &blk.Request); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil || next == 0 {
			return err
		}
		after = next
	}
}

// writeMeta writes m in the current format, in a transaction of its own.
func (s *Store) writeMeta(m meta) error {
	return s.upgradeTxn(func(txn *badger.Txn) error { return txn.Set(metaKey(), m.marshal()) })
}

// upgradeTxn runs fn in a write transaction at the store's read
// timestamp and commits it at the next, before the writer starts.
func (s *Store) upgradeTxn(fn func(*badger.Txn) error) error {
	readTs := s.readTs.Load()
	txn := s.db.NewTransactionAt(readTs, true)
	if err := fn(txn); err != nil {
		txn.Discard()
		return err
	}
	if err := txn.CommitAt(readTs+1, nil); err != nil {
		return err
	}
	s.readTs.Store(readTs + 1)
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
