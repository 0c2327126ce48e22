package store

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
)

// heldFilter is a Bloom filter of the records the store holds: a CID it
// does not contain is not held, which the store can then say without
// reading Badger. Most lookups of records not held are of records arriving
// for the first time, one for each before its signature is checked, and a
// Badger read of a missing key searches every memtable and level.
//
// It holds every record committed, and every record being written (the
// writer adds a record when it stages it, before the commit that makes it
// visible), so a reader that loads the read timestamp and then finds a CID
// absent from the filter knows the record was not held at that timestamp.
// It is never wrong that way; the other way, it says "maybe" for about 1 %
// of the records not held, which are then read from Badger as before.
//
// The filter grows by layers: when the newest is full, a new one of twice
// its capacity is added, and a CID is absent if it is absent from every
// layer. Only the writer (and Open) adds; anyone may test.
type heldFilter struct {
	seed   maphash.Seed
	layers atomic.Pointer[[]*filterLayer]
}

// Bloom parameters: 10 bits and 7 probes per record give about 0.8 %
// false positives; 1.2 MiB per million records.
const (
	filterBitsPerRecord = 10
	filterProbes        = 7
	minFilterCapacity   = 1 << 16
)

type filterLayer struct {
	words    []atomic.Uint64
	mask     uint64 // the number of bits, a power of two, minus one
	capacity int64
	count    atomic.Int64
}

func newFilterLayer(capacity int64) *filterLayer {
	nbits := uint64(1) << bits.Len64(uint64(capacity*filterBitsPerRecord-1))
	return &filterLayer{words: make([]atomic.Uint64, nbits/64), mask: nbits - 1, capacity: capacity}
}

// newHeldFilter makes a filter for about capacity records to begin with.
func newHeldFilter(capacity int64) *heldFilter {
	f := &heldFilter{seed: maphash.MakeSeed()}
	layers := []*filterLayer{newFilterLayer(max(capacity, minFilterCapacity))}
	f.layers.Store(&layers)
	return f
}

// probes returns the two hashes the probes are made of (double hashing).
func (f *heldFilter) probes(c cid.Cid) (h1, h2 uint64) {
	h := maphash.String(f.seed, c.KeyString())
	return h, h>>32 | h<<32 | 1
}

// add records c. Only one goroutine may add at a time.
func (f *heldFilter) add(c cid.Cid) {
	layers := *f.layers.Load()
	l := layers[len(layers)-1]
	if l.count.Load() >= l.capacity {
		l = newFilterLayer(2 * l.capacity)
		grown := append(append([]*filterLayer(nil), layers...), l)
		f.layers.Store(&grown)
	}
	h1, h2 := f.probes(c)
	for i := uint64(0); i < filterProbes; i++ {
		bit := (h1 + i*h2) & l.mask
		l.words[bit/64].Or(1 << (bit % 64))
	}
	l.count.Add(1)
}

// mayHold reports false only if c was never added.
func (f *heldFilter) mayHold(c cid.Cid) bool {
	h1, h2 := f.probes(c)
	for _, l := range *f.layers.Load() {
		if l.has(h1, h2) {
			return true
		}
	}
	return false
}

func (l *filterLayer) has(h1, h2 uint64) bool {
	for i := uint64(0); i < filterProbes; i++ {
		bit := (h1 + i*h2) & l.mask
		if l.words[bit/64].Load()&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// loadFilter fills a new filter with the CIDs of every record the store
// holds: a scan of the record keys, without their values.
func (s *Store) loadFilter() error {
	f := newHeldFilter(2 * int64(s.seq.Load()))
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			c, err := cid.Cast(it.Item().Key()[1:])
			if err != nil {
				return err
			}
			f.add(c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.held = f
	return nil
}
