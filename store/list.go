package store

import (
	"encoding/binary"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// Page sizes for List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// Query selects records for List. Zero fields do not filter; the filters
// that are set must all hold.
type Query struct {
	Kind         protocol.Kind
	Issuer       peer.ID
	Jurisdiction string
	// After skips records whose seq is not above it: pass the next of the
	// previous page.
	After uint64
	// Limit is the page size: 0 means DefaultListLimit; larger than
	// MaxListLimit means MaxListLimit.
	Limit int
}

// pageLimit is a page's size for a query's Limit (0: DefaultListLimit,
// at most MaxListLimit).
func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("%w: negative limit %d", ErrInvalidQuery, limit)
	case limit == 0:
		return DefaultListLimit, nil
	}
	return min(limit, MaxListLimit), nil
}

// Entry is a listed record with its acceptance seq.
type Entry struct {
	Seq    uint64
	Record *protocol.Record
}

// List returns, in acceptance order, up to Limit records with seq above
// q.After that match q's filters. next is the seq of the last entry when
// more records match, so that passing it back as After gives the next
// page; it is 0 on the last page. Listing does not fill the record cache.
//
// Each filter has an index ordered by seq; List walks the indexes of the
// filters set in step (a merge join), seeking each to the highest seq any
// of them is at, so it reads only index entries near matches, and never
// the whole store when a filter is set.
func (s *Store) List(q Query) (entries []Entry, next uint64, err error) {
	if err := s.enter(); err != nil {
		return nil, 0, err
	}
	defer s.leave()
	limit, err := pageLimit(q.Limit)
	if err != nil {
		return nil, 0, err
	}
	var prefixes [][]byte
	if q.Kind != "" {
		code, ok := kindCode(q.Kind)
		if !ok {
			return nil, 0, fmt.Errorf("%w: unknown kind %q", ErrInvalidQuery, q.Kind)
		}
		prefixes = append(prefixes, kindPrefix(code))
	}
	if q.Issuer != "" {
		prefixes = append(prefixes, indexPrefix(prefixIssuer, []byte(q.Issuer)))
	}
	if q.Jurisdiction != "" {
		if len(q.Jurisdiction) > 255 {
			return nil, 0, nil // no record names such a jurisdiction
		}
		prefixes = append(prefixes, indexPrefix(prefixJurisdiction, []byte(q.Jurisdiction)))
	}
	if q.After == ^uint64(0) {
		return nil, 0, nil
	}

	err = s.view(func(txn *badger.Txn) error {
		var cursors []*cursor
		if len(prefixes) == 0 {
			cursors = []*cursor{newCursor(txn, []byte{prefixSeq}, true)}
		}
		for _, pfx := range prefixes {
			cursors = append(cursors, newCursor(txn, pfx, false))
		}
		defer func() {
			for _, c := range cursors {
				c.close()
			}
		}()
		target := q.After + 1
	join:
		for {
			for _, c := range cursors {
				ok, err := c.seek(target)
				if err != nil {
					return err
				}
				if !ok {
					break join // an index ran out: nothing more matches
				}
				if c.seq > target {
					target = c.seq
					continue join
				}
			}
			// Every cursor is at target: a match.
			if len(entries) == limit {
				next = entries[len(entries)-1].Seq
				break
			}
			id, err := cursors[0].cid()
			if err != nil {
				return err
			}
			r, err := s.readRecord(txn, id, false)
			if err != nil {
				return err
			}
			entries = append(entries, Entry{Seq: target, Record: r})
			if target == ^uint64(0) {
				break
			}
			target++
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return entries, next, nil
}

// cursor walks one seq-ordered index: the keys under prefix, each the
// prefix, a seq and (for indexes) the record's CID. The seq keys are
// walked as an index too, with the CID in the value.
type cursor struct {
	it          *badger.Iterator
	prefix      []byte
	cidInValue  bool
	started, ok bool
	seq         uint64
	seekKeyBuf  []byte
}

func newCursor(txn *badger.Txn, prefix []byte, cidInValue bool) *cursor {
	return &cursor{
		it:         txn.NewIterator(badger.IteratorOptions{Prefix: prefix}),
		prefix:     prefix,
		cidInValue: cidInValue,
	}
}

func (c *cursor) close() { c.it.Close() }

// seek moves to the first entry whose seq is at least target and reports
// whether there is one. Cursors only move forward; a target at or below
// the current seq leaves the cursor where it is. Stepping once before
// seeking keeps a dense walk at the cost of Next rather than Seek.
func (c *cursor) seek(target uint64) (bool, error) {
	if c.started {
		if !c.ok || c.seq >= target {
			return c.ok, nil
		}
		c.it.Next()
		if err := c.load(); err != nil || !c.ok || c.seq >= target {
			return c.ok, err
		}
	}
	c.started = true
	c.seekKeyBuf = appendSeq(append(c.seekKeyBuf[:0], c.prefix...), target)
	c.it.Seek(c.seekKeyBuf)
	err := c.load()
	return c.ok, err
}

func (c *cursor) load() error {
	c.ok = c.it.Valid()
	if !c.ok {
		return nil
	}
	rest := c.it.Item().Key()[len(c.prefix):]
	if len(rest) < seqLen {
		c.ok = false
		return fmt.Errorf("store: index key too short (%d bytes after prefix)", len(rest))
	}
	c.seq = binary.BigEndian.Uint64(rest)
	return nil
}

// cid returns the CID of the entry the cursor is at.
func (c *cursor) cid() (cid.Cid, error) {
	item := c.it.Item()
	if !c.cidInValue {
		_, id, err := parseIndexKey(item.Key()[len(c.prefix):])
		return id, err
	}
	var id cid.Cid
	err := item.Value(func(v []byte) (err error) {
		id, _, err = splitSeqValue(v)
		return err
	})
	if err != nil {
		return cid.Undef, fmt.Errorf("store: seq %d: %w", c.seq, err)
	}
	return id, nil
}
