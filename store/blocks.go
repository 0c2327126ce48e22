package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/klauspost/compress/s2"

	"github.com/entente-net/entente/protocol"
)

// Decision blocks (protocol.DecisionBlock) are kept under b|cid. A
// receipt's own blocks are written with it, in its transaction
// (PutReceipt). Blocks of other nodes' receipts, fetched for a lineage,
// are written by PutBlocks: immutable and named by their content, each in
// a transaction of its own at version 1 (synchronously, SyncWrites), so
// they never meet the records' commit timestamps and every snapshot sees
// them.
//
// A block's value is its bytes compressed (blockValue): a decision block
// quotes the same peer IDs and times in several checks' details, and
// compressed it takes about half the room in the write-ahead log, the
// memtable and every compaction.

// GetBlock returns the block with CID c (a receipt's decision block,
// PutReceipt), or ErrNotFound.
func (s *Store) GetBlock(c cid.Cid) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	var b []byte
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(blockKey(c))
		if err != nil {
			return notFound(err)
		}
		return item.Value(func(v []byte) error {
			b, err = blockBytes(v)
			return err
		})
	})
	if err != nil {
		return nil, wrapRead(c, err)
	}
	return b, nil
}

// A block's value starts with blockRaw or blockS2. A decision block is a
// CBOR map, whose first byte is never either.
const (
	blockRaw = 0x00 // the block's bytes follow
	blockS2  = 0x01 // the block's bytes compressed by s2 (its block format)
)

// blockValue is the value a block is stored as.
func blockValue(b []byte) []byte {
	v := make([]byte, 1+s2.MaxEncodedLen(len(b)))
	z := s2.Encode(v[1:], b)
	if len(z) >= len(b) {
		return append([]byte{blockRaw}, b...)
	}
	v[0] = blockS2
	return v[:1+len(z)]
}

// blockBytes is the block a stored value holds (blockValue).
func blockBytes(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, errors.New("store: an empty block value")
	}
	switch v[0] {
	case blockRaw:
		return bytes.Clone(v[1:]), nil
	case blockS2:
		b, err := s2.Decode(nil, v[1:])
		if err != nil {
			return nil, fmt.Errorf("store: a block's value: %w", err)
		}
		return b, nil
	}
	// Format 3 stores of the first sessions kept the bytes as they are.
	return bytes.Clone(v), nil
}

// blocksMu serialises PutBlocks' look-then-write.
var blocksMu sync.Mutex

// PutBlocks stores decision blocks of the held receipt r that the store
// lacks: each must be one of r's decisions (its bytes hash to a CID r
// links to) and decode as a decision block. They are durable when it
// returns. Blocks already held are left as they are.
func (s *Store) PutBlocks(ctx context.Context, r cid.Cid, blocks [][]byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: put blocks: %w", err)
	}
	rec, err := s.Get(r)
	if err != nil {
		return fmt.Errorf("store: put blocks of %s: %w", r, err)
	}
	seq, err := s.Seq(r)
	if err != nil {
		return fmt.Errorf("store: put blocks of %s: %w", r, err)
	}
	body, ok := rec.Receipt()
	if !ok {
		return fmt.Errorf("store: put blocks: %s is a %s, not a receipt", r, rec.Kind())
	}
	decoded := make([]*protocol.DecisionBlock, len(blocks))
	items := make([]int, len(blocks))
	for i, b := range blocks {
		c := protocol.RecordCID(b)
		if items[i] = slices.IndexFunc(body.Decisions, func(l protocol.Link) bool { return l.Equals(c) }); items[i] < 0 {
			return fmt.Errorf("store: put blocks: block %d (%s) is not a decision of receipt %s", i, c, r)
		}
		if decoded[i], err = protocol.DecodeDecisionBlock(b); err != nil {
			return fmt.Errorf("store: put blocks: block %d (%s): %w", i, c, err)
		}
	}
	blocksMu.Lock()
	defer blocksMu.Unlock()
	for i, b := range blocks {
		key := blockKey(protocol.RecordCID(b))
		rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
		_, err := rtxn.Get(key)
		rtxn.Discard()
		switch {
		case err == nil:
			continue // held
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("store: put blocks: %w", err)
		}
		txn := s.db.NewTransactionAt(0, true)
		if err := txn.Set(key, blockValue(b)); err != nil {
			txn.Discard()
			return fmt.Errorf("store: put blocks: %w", err)
		}
		// In the register too, under the receipt's seq.
		if err := setDecision(txn, seq, items[i], protocol.RecordCID(b), &decoded[i].Request); err != nil {
			txn.Discard()
			return fmt.Errorf("store: put blocks: %w", err)
		}
		// A nil callback makes CommitAt wait for the (synced) write.
		if err := txn.CommitAt(1, nil); err != nil {
			return fmt.Errorf("store: put blocks: %w", err)
		}
	}
	return nil
}
