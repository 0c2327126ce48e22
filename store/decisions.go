package store

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// The register of transfer decisions (DESIGN.md §8, GET /v1/receipts):
// every decision of a receipt the store holds with its block is indexed
// by the fields a regulator or a platform looks for, in acceptance order
// of its receipt, then its index in the receipt:
//
//	e | field | n | value | seq | item (2 bytes)   -> the decision block's CID
//
// field is one of the decision fields below; decisionAll (no value) lists
// every decision. A receipt's own blocks are indexed with it, in its
// transaction; blocks fetched later (PutBlocks) when they are written.
const prefixDecision byte = 'e'

// Decision fields, as key bytes (on-disk format).
const (
	decisionAll       byte = 'a'
	decisionConsent   byte = 'c'
	decisionSender    byte = 's'
	decisionRecipient byte = 'r'
	decisionFrom      byte = 'f'
	decisionTo        byte = 't'
)

// itemLen is the length of a decision's index in keys.
const itemLen = 2

// decisionPrefix leads the keys of one field's value.
func decisionPrefix(field byte, value []byte) []byte {
	return append([]byte{prefixDecision}, indexPrefix(field, value)...)
}

func decisionKey(pfx []byte, seq uint64, item int) []byte {
	b := make([]byte, 0, len(pfx)+seqLen+itemLen)
	b = appendSeq(append(b, pfx...), seq)
	return binary.BigEndian.AppendUint16(b, uint16(item))
}

// setDecision writes the register's keys of decision item of the receipt
// at seq, whose block is blk and request req, each valued with the
// block's CID (so that a walk of the register reads the blocks without
// their receipts).
func setDecision(txn *badger.Txn, seq uint64, item int, blk cid.Cid, req *protocol.TransferRequest) error {
	for _, e := range appendDecisionEntries(nil, seq, item, blk, req) {
		if err := txn.Set(e.k, e.v); err != nil {
			return err
		}
	}
	return nil
}

// appendDecisionEntries appends to dst the register's entries that
// setDecision writes.
func appendDecisionEntries(dst []entry, seq uint64, item int, blk cid.Cid, req *protocol.TransferRequest) []entry {
	for _, f := range decisionFields(req) {
		dst = append(dst, entry{decisionKey(decisionPrefix(f.field, f.value), seq, item), blk.Bytes()})
	}
	return dst
}

type decisionField struct {
	field byte
	value []byte
}

func decisionFields(req *protocol.TransferRequest) []decisionField {
	return []decisionField{
		{decisionAll, nil},
		{decisionConsent, req.Consent.Bytes()},
		{decisionSender, []byte(req.Sender)},
		{decisionRecipient, []byte(req.Recipient)},
		{decisionFrom, []byte(req.From)},
		{decisionTo, []byte(req.To)},
	}
}

// DecisionQuery selects decisions from the register. Zero fields do not
// filter; those that are set must all hold.
type DecisionQuery struct {
	Consent           cid.Cid
	Sender, Recipient string // peer IDs, as requests name them
	From, To          string // jurisdiction codes
	// After is a cursor: the next of the previous page.
	After uint64
	// Limit is the page size: 0 means DefaultListLimit; larger than
	// MaxListLimit means MaxListLimit.
	Limit int
}

// DecisionEntry is a decision of the register: its receipt, its index in
// the receipt, the receipt's seq, and the decision block's CID.
type DecisionEntry struct {
	Receipt cid.Cid
	Item    int
	Seq     uint64
	Block   cid.Cid
}

// decisionCursor packs a decision's place in the register into a cursor.
func decisionCursor(seq uint64, item int) uint64 { return seq<<16 | uint64(item) }

// Decisions lists the register's decisions that match q, in acceptance
// order of their receipts, then by item. next is the cursor of the next
// page, 0 on the last. It walks the index of the most selective filter
// set (consent, sender, recipient, then the jurisdictions) and looks up
// the others' keys.
func (s *Store) Decisions(q DecisionQuery) (entries []DecisionEntry, next uint64, err error) {
	if err := s.enter(); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, 0, err
	}
	var fields []decisionField
	if q.Consent.Defined() {
		fields = append(fields, decisionField{decisionConsent, q.Consent.Bytes()})
	}
	for _, f := range []decisionField{{decisionSender, []byte(q.Sender)}, {decisionRecipient, []byte(q.Recipient)},
		{decisionFrom, []byte(q.From)}, {decisionTo, []byte(q.To)}} {
		if len(f.value) > 0 {
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		fields = []decisionField{{decisionAll, nil}}
	}
	walk := decisionPrefix(fields[0].field, fields[0].value)
	err = s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: walk})
		defer it.Close()
		seek := walk
		if q.After > 0 {
			seek = decisionKey(walk, q.After>>16, int(q.After&0xffff)+1)
		}
	keys:
		for it.Seek(seek); it.Valid(); it.Next() {
			rest := it.Item().Key()[len(walk):]
			if len(rest) != seqLen+itemLen {
				return fmt.Errorf("store: a register key of %d bytes after its prefix", len(rest))
			}
			seq, item := binary.BigEndian.Uint64(rest), int(binary.BigEndian.Uint16(rest[seqLen:]))
			var blk cid.Cid
			if err := it.Item().Value(func(v []byte) error {
				var err error
				blk, err = cid.Cast(v)
				return err
			}); err != nil {
				return fmt.Errorf("store: register: seq %d item %d: %w", seq, item, err)
			}
			for _, f := range fields[1:] {
				if _, err := txn.Get(decisionKey(decisionPrefix(f.field, f.value), seq, item)); err == badger.ErrKeyNotFound {
					continue keys
				} else if err != nil {
					return err
				}
			}
			if len(entries) == limit {
				next = decisionCursor(entries[limit-1].Seq, entries[limit-1].Item)
				return nil
			}
			item2, err := txn.Get(seqKey(seq))
			if err != nil {
				return fmt.Errorf("store: register: seq %d: %w", seq, err)
			}
			var c cid.Cid
			if err := item2.Value(func(v []byte) error {
				var err error
				c, _, err = splitSeqValue(v)
				return err
			}); err != nil {
				return err
			}
			entries = append(entries, DecisionEntry{Receipt: c, Item: item, Seq: seq, Block: blk})
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return entries, next, nil
}

// DecisionCursor is the cursor that lists the decisions after e
// (DecisionQuery.After).
func DecisionCursor(e DecisionEntry) uint64 { return decisionCursor(e.Seq, e.Item) }
