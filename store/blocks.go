package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// Decision blocks (protocol.DecisionBlock) are kept under b|cid. A
// receipt's own blocks are written with it, in its transaction
// (PutReceipt). Blocks of other nodes' receipts, fetched for a lineage,
// are written by PutBlocks: immutable and named by their content, each in
// a transaction of its own at version 1 (synchronously, SyncWrites), so
// they never meet the records' commit timestamps and every snapshot sees
// them.

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
		b, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, wrapRead(c, err)
	}
	return b, nil
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
	body, ok := rec.Receipt()
	if !ok {
		return fmt.Errorf("store: put blocks: %s is a %s, not a receipt", r, rec.Kind())
	}
	for i, b := range blocks {
		c := protocol.RecordCID(b)
		linked := false
		for _, l := range body.Decisions {
			linked = linked || l.Equals(c)
		}
		if !linked {
			return fmt.Errorf("store: put blocks: block %d (%s) is not a decision of receipt %s", i, c, r)
		}
		if _, err := protocol.DecodeDecisionBlock(b); err != nil {
			return fmt.Errorf("store: put blocks: block %d (%s): %w", i, c, err)
		}
	}
	blocksMu.Lock()
	defer blocksMu.Unlock()
	for _, b := range blocks {
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
		if err := txn.Set(key, b); err != nil {
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
