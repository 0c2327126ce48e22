package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// The store keeps what the node's witness learned of its peers' logs
// (DESIGN.md §6): per peer, the last checkpoint it verified, and the
// evidence of every equivocation it saw. Keys have the prefix 'w':
//
//	w | 0 | peer ID                 -> JSON WitnessState
//	w | 1 | len(peer ID) | peer ID | size (8 bytes, big-endian) -> JSON WitnessEvidence
//
// Like the checkpoint key, these keys bypass the group-commit writer: each
// is written in a transaction of its own, synchronously, at a version one
// above its previous one, and read at the highest timestamp. Writes are
// serialised by witnessMu.

const (
	prefixWitness   byte = 'w'
	witnessState    byte = 0
	witnessEvidence byte = 1
	// maxWitnessValue bounds a kept witness value.
	maxWitnessValue = 64 << 10
)

var witnessMu sync.Mutex

// WitnessState is the last checkpoint of a peer's log the node verified:
// its tree, the note (the peer's signature and the node's cosignature)
// and when it was verified (Unix milliseconds).
type WitnessState struct {
	Peer string    `json:"peer"`
	Size uint64    `json:"size"`
	Root tlog.Hash `json:"root"`
	Note []byte    `json:"note"`
	At   int64     `json:"at"`
}

// WitnessEvidence is an equivocation a node saw: two notes of one peer
// that cannot both be true (one size with two roots, or a newer tree whose
// consistency proof from the older fails).
type WitnessEvidence struct {
	Peer     string   `json:"peer"`
	Size     uint64   `json:"size"`
	Kind     string   `json:"kind"`
	Notes    [][]byte `json:"notes"`
	Roots    []string `json:"roots"`
	Sizes    []uint64 `json:"sizes"`
	At       int64    `json:"at"`
	Incident string   `json:"incident,omitempty"`
}

func witnessStateKey(peer string) []byte {
	return append([]byte{prefixWitness, witnessState}, peer...)
}

func witnessEvidenceKey(peer string, size uint64) []byte {
	k := []byte{prefixWitness, witnessEvidence, byte(len(peer))}
	k = append(k, peer...)
	return appendSeq(k, size)
}

// SaveWitnessState keeps st as the last verified checkpoint of st.Peer,
// durably.
func (s *Store) SaveWitnessState(st WitnessState) error {
	if st.Peer == "" || len(st.Peer) > 255 {
		return fmt.Errorf("%w: witness peer %q", ErrInvalidQuery, st.Peer)
	}
	return s.saveWitness(witnessStateKey(st.Peer), st)
}

// SaveWitnessEvidence keeps e, durably, replacing evidence of the same
// peer and size.
func (s *Store) SaveWitnessEvidence(e WitnessEvidence) error {
	if e.Peer == "" || len(e.Peer) > 255 {
		return fmt.Errorf("%w: witness peer %q", ErrInvalidQuery, e.Peer)
	}
	return s.saveWitness(witnessEvidenceKey(e.Peer, e.Size), e)
}

// WitnessStates returns every kept WitnessState.
func (s *Store) WitnessStates() ([]WitnessState, error) {
	var out []WitnessState
	err := s.scanWitness(witnessState, func(v []byte) error {
		var st WitnessState
		if err := json.Unmarshal(v, &st); err != nil {
			return err
		}
		out = append(out, st)
		return nil
	})
	return out, err
}

// WitnessEvidences returns every kept WitnessEvidence.
func (s *Store) WitnessEvidences() ([]WitnessEvidence, error) {
	var out []WitnessEvidence
	err := s.scanWitness(witnessEvidence, func(v []byte) error {
		var e WitnessEvidence
		if err := json.Unmarshal(v, &e); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

func (s *Store) saveWitness(key []byte, v any) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	val, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: witness: %w", err)
	}
	if len(val) > maxWitnessValue {
		return fmt.Errorf("store: witness value of %d bytes (at most %d)", len(val), maxWitnessValue)
	}
	witnessMu.Lock()
	defer witnessMu.Unlock()
	var version uint64
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	item, err := rtxn.Get(key)
	switch {
	case err == nil:
		version = item.Version()
	case !errors.Is(err, badger.ErrKeyNotFound):
		rtxn.Discard()
		return fmt.Errorf("store: witness: %w", err)
	}
	rtxn.Discard()
	txn := s.db.NewTransactionAt(version, true)
	defer txn.Discard()
	if err := txn.Set(key, val); err != nil {
		return fmt.Errorf("store: witness: %w", err)
	}
	if err := txn.CommitAt(version+1, nil); err != nil {
		return fmt.Errorf("store: witness: %w", err)
	}
	return nil
}

func (s *Store) scanWitness(sub byte, fn func([]byte) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	prefix := []byte{prefixWitness, sub}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := it.Item().Value(fn); err != nil {
			return fmt.Errorf("store: witness %q: %w", it.Item().Key(), err)
		}
	}
	return nil
}
