package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

// Notices to platforms (DESIGN.md §6, "Notices to platforms"): when a
// consent is revoked or superseded, the node keeps a notice for each
// recipient platform of its allowed decisions under it, numbered by a
// durable per-node sequence (the event IDs of /v1/notices/stream), and
// records when each decision's notice first reached a subscriber:
//
//	v | seq (8 bytes)              -> JSON Notice
//	V | receipt CID | item (2)     -> Unix ms, 8 bytes (first delivered)
//
// Both are written outside the group commit, each synced, at version 1
// (like fetched blocks): they are never rewritten.
const (
	prefixNotice   byte = 'v'
	prefixNotified byte = 'V'
)

// Notice is one notice to one platform.
type Notice struct {
	Seq       uint64        `json:"-"`
	Event     string        `json:"event"` // consent-revoked or consent-superseded
	Consent   string        `json:"consent"`
	By        string        `json:"by"` // the revoking or superseding record
	Recipient string        `json:"recipient"`
	Decisions []DecisionRef `json:"decisions"`
	At        int64         `json:"at"` // when the node made it, Unix ms
}

// DecisionRef names a decision: item of receipt.
type DecisionRef struct {
	Receipt string `json:"receipt"`
	Item    int    `json:"item"`
}

// noticesMu serialises the notices' sequence and the first-delivery
// marks' look-then-write.
var noticesMu sync.Mutex

func noticeKey(seq uint64) []byte { return appendSeq([]byte{prefixNotice}, seq) }

func notifiedKey(receipt cid.Cid, item int) []byte {
	return binary.BigEndian.AppendUint16(append([]byte{prefixNotified}, receipt.Bytes()...), uint16(item))
}

// PutNotice keeps n under the next notice seq, which it returns, once it
// is durable.
func (s *Store) PutNotice(n Notice) (uint64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	noticesMu.Lock()
	defer noticesMu.Unlock()
	last, err := s.lastNotice()
	if err != nil {
		return 0, err
	}
	val, err := json.Marshal(n)
	if err != nil {
		return 0, fmt.Errorf("store: notice: %w", err)
	}
	if err := s.writeOnce(noticeKey(last+1), val); err != nil {
		return 0, fmt.Errorf("store: notice: %w", err)
	}
	return last + 1, nil
}

// lastNotice is the highest notice seq, 0 for none.
func (s *Store) lastNotice() (uint64, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixNotice}, Reverse: true})
	defer it.Close()
	it.Seek(noticeKey(math.MaxUint64))
	if !it.Valid() {
		return 0, nil
	}
	return binary.BigEndian.Uint64(it.Item().Key()[1:]), nil
}

// writeOnce writes key, new, durably at version 1.
func (s *Store) writeOnce(key, val []byte) error {
	txn := s.db.NewTransactionAt(0, true)
	defer txn.Discard()
	if err := txn.Set(key, val); err != nil {
		return err
	}
	return txn.CommitAt(1, nil)
}

// Notices lists, in sequence, up to limit notices after seq after for
// recipient ("" for every recipient).
func (s *Store) Notices(recipient string, after uint64, limit int) ([]Notice, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixNotice}})
	defer it.Close()
	var out []Notice
	for it.Seek(noticeKey(after + 1)); it.Valid() && len(out) < limit; it.Next() {
		var n Notice
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &n) }); err != nil {
			return nil, fmt.Errorf("store: notice: %w", err)
		}
		if recipient == "" || n.Recipient == recipient {
			n.Seq = binary.BigEndian.Uint64(it.Item().Key()[1:])
			out = append(out, n)
		}
	}
	return out, nil
}

// MarkNotified records at (Unix ms) as when the notices of refs first
// reached a subscriber, for those not marked yet.
func (s *Store) MarkNotified(refs []DecisionRef, at int64) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	noticesMu.Lock()
	defer noticesMu.Unlock()
	for _, ref := range refs {
		c, err := cid.Decode(ref.Receipt)
		if err != nil {
			return fmt.Errorf("store: notified: %w", err)
		}
		key := notifiedKey(c, ref.Item)
		if _, ok, err := s.notifiedAt(key); err != nil || ok {
			if err != nil {
				return err
			}
			continue
		}
		if err := s.writeOnce(key, binary.BigEndian.AppendUint64(nil, uint64(at))); err != nil {
			return fmt.Errorf("store: notified: %w", err)
		}
	}
	return nil
}

// NotifiedAt is when the notice of decision item of receipt first
// reached a subscriber; ok is false if it has not.
func (s *Store) NotifiedAt(receipt cid.Cid, item int) (at int64, ok bool, err error) {
	if err := s.enter(); err != nil {
		return 0, false, err
	}
	defer s.leave()
	return s.notifiedAt(notifiedKey(receipt, item))
}

func (s *Store) notifiedAt(key []byte) (int64, bool, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var at int64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("store: a first-delivery mark of %d bytes", len(v))
		}
		at = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return at, err == nil, err
}
