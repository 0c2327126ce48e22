package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// Get returns the record with CID c, or ErrNotFound.
func (s *Store) Get(c cid.Cid) (*protocol.Record, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if r, ok := s.cache.get(c); ok {
		return r, nil
	}
	var r *protocol.Record
	err := s.view(func(txn *badger.Txn) (err error) {
		r, err = s.readRecord(txn, c, true)
		return err
	})
	return r, err
}

// GetBytes returns the encoding of the record with CID c, or ErrNotFound.
// Like Record.Bytes, the slice may be shared: do not modify it.
func (s *Store) GetBytes(c cid.Cid) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if r, ok := s.cache.get(c); ok {
		return r.Bytes(), nil
	}
	var b []byte
	err := s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(recordKey(c))
		if err != nil {
			return notFound(err)
		}
		return item.Value(func(v []byte) error {
			_, rb, err := splitRecordValue(v)
			b = append([]byte(nil), rb...)
			return err
		})
	})
	if err != nil {
		return nil, wrapRead(c, err)
	}
	return b, nil
}

// Has reports whether the store holds the record with CID c.
func (s *Store) Has(c cid.Cid) (bool, error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	_, cached := s.cache.get(c) // the cache holds only durable records
	s.leave()
	if cached {
		return true, nil
	}
	_, err := s.Seq(c)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// Seq returns the acceptance seq of the record with CID c, or ErrNotFound.
func (s *Store) Seq(c cid.Cid) (uint64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	return s.lookupSeq(c)
}

// lookupSeq is Seq for callers that have entered.
func (s *Store) lookupSeq(c cid.Cid) (uint64, error) {
	seq, _, err := s.lookupSeqAt(c)
	return seq, err
}

// lookupSeqAt is lookupSeq that also says at which read timestamp it
// looked.
func (s *Store) lookupSeqAt(c cid.Cid) (uint64, uint64, error) {
	readTs := s.readTs.Load()
	if !s.held.mayHold(c) { // after loading readTs: see heldFilter
		return 0, readTs, ErrNotFound
	}
	var seq uint64
	err := s.viewAt(readTs, func(txn *badger.Txn) (err error) {
		seq, err = txnSeq(txn, c)
		return err
	})
	return seq, readTs, err
}

// EvidenceEpoch is a number that changes whenever the store makes visible
// a record of any kind but receipt, and only then. Every answer the store
// gives about records other than receipts (AccreditationsOf, RulesetsOf,
// IncidentsAffecting, LinkedFrom without receipts, and Get) stays what it
// was while the epoch does: a caller that reads the epoch, then the store,
// may keep the answers for as long as the epoch reads the same. Receipts,
// which nodes write for every transfer they decide, leave it alone.
func (s *Store) EvidenceEpoch() uint64 { return s.evidenceEpoch.Load() }

// Absence is the store's word that it did not hold a record when asked.
// Given to PutNew, it spares the writer its own look-up of the record
// whenever the writer remembers every commit made since (it keeps the
// last several thousand records it committed).
type Absence struct {
	c      cid.Cid
	readTs uint64
}

// Lookup is Seq that, when the record is not held (ErrNotFound), also
// returns an Absence for PutNew.
func (s *Store) Lookup(c cid.Cid) (uint64, Absence, error) {
	if err := s.enter(); err != nil {
		return 0, Absence{}, err
	}
	defer s.leave()
	seq, readTs, err := s.lookupSeqAt(c)
	if errors.Is(err, ErrNotFound) {
		return 0, Absence{c: c, readTs: readTs}, err
	}
	return seq, Absence{}, err
}

// txnSeq reads the seq of c in txn.
func txnSeq(txn *badger.Txn, c cid.Cid) (uint64, error) {
	item, err := txn.Get(recordKey(c))
	if err != nil {
		return 0, wrapRead(c, notFound(err))
	}
	var seq uint64
	err = item.Value(func(v []byte) (err error) {
		seq, _, err = splitRecordValue(v)
		return err
	})
	return seq, wrapRead(c, err)
}

// readRecord reads and decodes the record with CID c in txn, through the
// cache; remember says whether to add a record read from Badger to it.
func (s *Store) readRecord(txn *badger.Txn, c cid.Cid, remember bool) (*protocol.Record, error) {
	if r, ok := s.cache.get(c); ok {
		return r, nil
	}
	item, err := txn.Get(recordKey(c))
	if err != nil {
		return nil, wrapRead(c, notFound(err))
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, wrapRead(c, err)
	}
	_, b, err := splitRecordValue(v)
	if err != nil {
		return nil, wrapRead(c, err)
	}
	// Records were verified before they were stored; decoding (without the
	// signature check) rebuilds the Record and recomputes its CID, which
	// catches a damaged value.
	r, err := protocol.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("store: record %s: stored bytes do not decode: %w", c, err)
	}
	if !r.CID().Equals(c) {
		return nil, fmt.Errorf("store: record %s: stored bytes hash to %s", c, r.CID())
	}
	if remember {
		s.cache.add(r)
	}
	return r, nil
}

// notFound turns Badger's missing key into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	return err
}

// wrapRead names the record in a read error, keeping ErrNotFound as is
// (callers compare it often; the CID is theirs already).
func wrapRead(c cid.Cid, err error) error {
	if err == nil || errors.Is(err, ErrNotFound) {
		return err
	}
	return fmt.Errorf("store: read %s: %w", c, err)
}

// Counts returns the number of records of each kind, every kind listed
// (zero included). After Close it returns nil.
func (s *Store) Counts() map[protocol.Kind]int64 {
	if err := s.enter(); err != nil {
		return nil
	}
	defer s.leave()
	out := make(map[protocol.Kind]int64, len(protocol.Kinds))
	for _, k := range protocol.Kinds {
		code, _ := kindCode(k)
		out[k] = s.counts[code].Load()
	}
	return out
}

// Count is the number of records of kind k held (Counts' entry for k,
// without the map): a lock-free load, cheap enough to ask on every
// accepted record.
func (s *Store) Count(k protocol.Kind) int64 {
	code, ok := kindCode(k)
	if !ok {
		return 0
	}
	return s.counts[code].Load()
}

// Len returns the number of records held, which is also the highest seq.
// After Close it returns 0.
func (s *Store) Len() uint64 {
	if err := s.enter(); err != nil {
		return 0
	}
	defer s.leave()
	return s.seq.Load()
}

// AccreditationsOf returns the accreditation records whose body names
// subject, in acceptance order: all of them, whoever issued them and
// whether or not they are still valid or revoked.
func (s *Store) AccreditationsOf(subject peer.ID) ([]*protocol.Record, error) {
	return s.scanCached(indexPrefix(prefixSubject, []byte(subject)))
}

// IncidentsAffecting returns the incident notices whose affected list
// names id, in acceptance order.
func (s *Store) IncidentsAffecting(id peer.ID) ([]*protocol.Record, error) {
	return s.scanIndex(indexPrefix(prefixAffected, []byte(id)))
}

// RulesetsOf returns the rulesets of a jurisdiction, in acceptance order.
func (s *Store) RulesetsOf(jurisdiction string) ([]*protocol.Record, error) {
	var out []*protocol.Record
	q := Query{Kind: protocol.KindRuleset, Jurisdiction: jurisdiction, Limit: MaxListLimit}
	for {
		entries, next, err := s.List(q)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			out = append(out, e.Record)
		}
		if next == 0 {
			return out, nil
		}
		q.After = next
	}
}

// LinkedFrom returns the records that link to target (see
// protocol.Record.Links), in acceptance order. With kinds, only records of
// those kinds are returned, and only their index entries are read: a
// revocation check passes protocol.KindRevocation and skips the receipts
// that cite the same consent.
func (s *Store) LinkedFrom(target cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error) {
	if len(kinds) == 0 {
		kinds = protocol.Kinds
	}
	if len(kinds) == 1 && kinds[0] == protocol.KindRevocation { // every authorisation asks
		code, _ := kindCode(protocol.KindRevocation)
		return s.scanCached(backlinkPrefix(target, code))
	}
	prefixes := make([][]byte, 0, len(kinds))
	for _, k := range kinds {
		code, ok := kindCode(k)
		if !ok {
			return nil, fmt.Errorf("%w: unknown kind %q", ErrInvalidQuery, k)
		}
		prefixes = append(prefixes, backlinkPrefix(target, code))
	}
	return s.scanIndex(prefixes...)
}

// scanCached is scanIndex of one prefix through the scan cache (see
// scanCache for the prefixes it is used for, which its commits forget).
func (s *Store) scanCached(prefix []byte) ([]*protocol.Record, error) {
	recs, gen, ok := s.scans.get(prefix)
	if ok {
		return slices.Clone(recs), nil
	}
	recs, err := s.scanIndex(prefix)
	if err == nil {
		s.scans.put(prefix, gen, slices.Clone(recs))
	}
	return recs, err
}

// scanIndex returns the records under the index prefixes, in seq order.
func (s *Store) scanIndex(prefixes ...[]byte) ([]*protocol.Record, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	type hit struct {
		seq uint64
		cid cid.Cid
	}
	var out []*protocol.Record
	err := s.view(func(txn *badger.Txn) error {
		var hits []hit
		for _, pfx := range prefixes {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: pfx})
			for it.Rewind(); it.Valid(); it.Next() {
				seq, c, err := parseIndexKey(it.Item().Key()[len(pfx):])
				if err != nil {
					it.Close()
					return err
				}
				hits = append(hits, hit{seq, c})
			}
			it.Close()
		}
		if len(prefixes) > 1 {
			slices.SortFunc(hits, func(a, b hit) int { return cmp.Compare(a.seq, b.seq) })
		}
		out = make([]*protocol.Record, 0, len(hits))
		for _, h := range hits {
			r, err := s.readRecord(txn, h.cid, true)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SyncItems calls fn for every record of the sync set (see Syncable), in
// (issued_at, CID) order, reading keys only. It stops at fn's first error.
func (s *Store) SyncItems(fn func(issuedAt int64, c cid.Cid) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.view(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Prefix: []byte{prefixSync}}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) < 9 {
				return fmt.Errorf("store: sync key of %d bytes", len(k))
			}
			c, err := cid.Cast(k[9:])
			if err != nil {
				return fmt.Errorf("store: sync key: %w", err)
			}
			if err := fn(int64(binary.BigEndian.Uint64(k[1:9])), c); err != nil {
				return err
			}
		}
		return nil
	})
}
