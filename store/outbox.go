package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The delivery outbox (DESIGN.md §6, "Direct delivery"): per record and
// target node, where the record's delivery to that node stands: pending
// (with the attempts made), or acknowledged (with the node's signed
// acknowledgement, kept as evidence and so that the state survives a
// restart). One key per record and node:
//
//	o | cid | n | peer ID   -> JSON OutboxEntry
//
// Like the witness keys, these bypass the group-commit writer: each write
// is a transaction of its own, synchronous (durable when it returns), at
// a version one above the key's latest, tombstones included; writes are
// serialised by outboxMu, and reads are at the highest timestamp.

const (
	prefixOutbox byte = 'o'
	// maxOutboxValue bounds a kept outbox value.
	maxOutboxValue = 4 << 10
)

var outboxMu sync.Mutex

// OutboxEntry is the delivery of one record to one node.
type OutboxEntry struct {
	Record       cid.Cid `json:"record"`
	Peer         peer.ID `json:"peer"`
	Jurisdiction string  `json:"jurisdiction"` // the target jurisdiction the node is a node of
	Added        int64   `json:"added"`        // when the entry was made, Unix ms
	Attempts     int     `json:"attempts"`     // pushes made so far
	// AckedAt and Ack are set once the node acknowledged: the time it
	// signed and its 64-byte signature (protocol.DeliveryAck).
	AckedAt int64  `json:"acked_at,omitempty"`
	Ack     []byte `json:"ack,omitempty"`
}

// Acked reports whether the node acknowledged the record.
func (e OutboxEntry) Acked() bool { return len(e.Ack) > 0 }

func outboxKey(c cid.Cid, p peer.ID) []byte {
	k := append([]byte{prefixOutbox}, c.Bytes()...)
	k = append(k, byte(len(p)))
	return append(k, p...)
}

func (e OutboxEntry) check() error {
	switch {
	case !e.Record.Defined():
		return fmt.Errorf("%w: outbox entry without a record", ErrInvalidQuery)
	case len(e.Peer) == 0 || len(e.Peer) > 255:
		return fmt.Errorf("%w: outbox entry for peer %q", ErrInvalidQuery, e.Peer)
	}
	return nil
}

// PutOutbox keeps e, replacing the entry of the same record and peer, and
// returns once it is durable.
func (s *Store) PutOutbox(e OutboxEntry) error {
	if err := e.check(); err != nil {
		return err
	}
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	if len(val) > maxOutboxValue {
		return fmt.Errorf("store: outbox value of %d bytes (at most %d)", len(val), maxOutboxValue)
	}
	return s.writeOutbox(outboxKey(e.Record, e.Peer), val)
}

// PutOutboxes keeps es, as PutOutbox does each, in one synced
// transaction: durable together when it returns.
func (s *Store) PutOutboxes(es []OutboxEntry) error {
	if len(es) == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	keys, vals := make([][]byte, len(es)), make([][]byte, len(es))
	for i, e := range es {
		if err := e.check(); err != nil {
			return err
		}
		val, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
		if len(val) > maxOutboxValue {
			return fmt.Errorf("store: outbox value of %d bytes (at most %d)", len(val), maxOutboxValue)
		}
		keys[i], vals[i] = outboxKey(e.Record, e.Peer), val
	}
	outboxMu.Lock()
	defer outboxMu.Unlock()
	var version uint64
	for _, k := range keys {
		v, err := s.latestVersion(k)
		if err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
		version = max(version, v)
	}
	txn := s.db.NewTransactionAt(version, true)
	defer txn.Discard()
	for i, k := range keys {
		if err := txn.Set(k, vals[i]); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
	}
	if err := txn.CommitAt(version+1, nil); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// DeleteOutbox removes the entry of record c and peer p, if any, and
// returns once the removal is durable.
func (s *Store) DeleteOutbox(c cid.Cid, p peer.ID) error {
	return s.writeOutbox(outboxKey(c, p), nil)
}

// writeOutbox sets key to val, or deletes it for nil val, synchronously.
func (s *Store) writeOutbox(key, val []byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	outboxMu.Lock()
	defer outboxMu.Unlock()
	version, err := s.latestVersion(key)
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	txn := s.db.NewTransactionAt(version, true)
	defer txn.Discard()
	if val == nil {
		err = txn.Delete(key)
	} else {
		err = txn.Set(key, val)
	}
	if err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	// A nil callback makes CommitAt wait for the (synced) write.
	if err := txn.CommitAt(version+1, nil); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// latestVersion is the version of key's latest write, a deletion
// included (a write below a tombstone would stay hidden), or 0.
func (s *Store) latestVersion(key []byte) (uint64, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: key, AllVersions: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if string(it.Item().Key()) == string(key) {
			return it.Item().Version(), nil // the latest version comes first
		}
	}
	return 0, nil
}

// ListOutbox returns every kept entry, pending and acknowledged, by
// record (binary CID) then peer.
func (s *Store) ListOutbox() ([]OutboxEntry, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixOutbox}})
	defer it.Close()
	var out []OutboxEntry
	for it.Rewind(); it.Valid(); it.Next() {
		var e OutboxEntry
		err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &e) })
		if err == nil {
			err = e.check()
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("store: outbox key %x", it.Item().Key()), err)
		}
		out = append(out, e)
	}
	return out, nil
}
