package negentropy

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
)

// ID identifies an item: typically a hash of the record it stands for.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Item is one element of a reconciled set. Timestamp must be below
// 2^64-1, which the protocol reserves for infinity.
type Item struct {
	Timestamp uint64
	ID        ID
}

func compareItems(a, b Item) int {
	if c := cmp.Compare(a.Timestamp, b.Timestamp); c != 0 {
		return c
	}
	return bytes.Compare(a.ID[:], b.ID[:])
}

// A Vector is an immutable set of items in protocol order (timestamp, then
// ID bytes). Build it once per session; it may be shared by any number of
// sessions, including concurrent ones.
type Vector struct {
	items []Item
}

// NewVector copies and sorts items into a Vector. It returns an error,
// naming the item, if an item has the reserved timestamp 2^64-1 or if an ID
// occurs more than once (at the same or at different timestamps).
func NewVector(items []Item) (*Vector, error) {
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, compareItems)
	seen := make(map[ID]struct{}, len(sorted))
	for _, it := range sorted {
		if it.Timestamp == math.MaxUint64 {
			return nil, fmt.Errorf("negentropy: item %s has the reserved timestamp 2^64-1", it.ID)
		}
		if _, dup := seen[it.ID]; dup {
			return nil, fmt.Errorf("negentropy: ID %s occurs more than once", it.ID)
		}
		seen[it.ID] = struct{}{}
	}
	return &Vector{items: sorted}, nil
}

// Len returns the number of items in v.
func (v *Vector) Len() int { return len(v.items) }

// lowerBound returns the index of the first item at or after from that is
// not below b (len(v.items) if none).
func (v *Vector) lowerBound(from int, b bound) int {
	rest := v.items[from:]
	return from + sort.Search(len(rest), func(i int) bool { return !itemBelow(rest[i], b) })
}

// fingerprint returns the fingerprint of v.items[lo:hi].
func (v *Vector) fingerprint(lo, hi int) [FingerprintSize]byte {
	var acc accumulator
	for i := lo; i < hi; i++ {
		acc.add(&v.items[i].ID)
	}
	return acc.fingerprint(uint64(hi - lo))
}
