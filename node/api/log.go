package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/store"
)

// InclusionProof is the answer of GET /v1/log/proof: the record at leaf
// Index is in the tree of Size leaves. Check it with tlog.CheckRecord
// against that tree's root, with tlog.RecordHash of the record's binary
// CID as the leaf hash.
type InclusionProof struct {
	Index  uint64      `json:"index"`
	Size   uint64      `json:"size"`
	Hashes []tlog.Hash `json:"hashes"` // base64 in JSON
}

// ConsistencyProof is the answer of GET /v1/log/consistency: the tree of
// size from is a prefix of the tree of size to. Check it with
// tlog.CheckTree against the two roots.
type ConsistencyProof struct {
	Hashes []tlog.Hash `json:"hashes"`
}

// handleCheckpoint serves the latest signed checkpoint note.
func (a *API) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	sc, err := a.cfg.Checkpoints.Latest()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", MediaText)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(sc.Note)
}

// handleInclusionProof serves ?cid=C[&size=N]: C's inclusion in the tree
// of size N, by default the latest checkpoint's.
func (a *API) handleInclusionProof(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "cid", "size")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if q.Get("cid") == "" {
		a.writeError(w, r, badRequest("cid: required"))
		return
	}
	c, err := cidParam(q.Get("cid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var size uint64
	if q.Has("size") {
		if size, err = treeSize(q, "size"); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	if _, err := a.visibleRecord(r, c); err != nil {
		a.writeError(w, r, err)
		return
	}
	seq, err := a.cfg.Store.Seq(c)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if size == 0 {
		sc, err := a.cfg.Checkpoints.Latest()
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		size = sc.Size
	}
	index := seq - 1
	if index >= size {
		a.writeError(w, r, badRequest("cid: %s is leaf %d, not in the tree of size %d (a later checkpoint will cover it)", c, index, size))
		return
	}
	p, err := a.cfg.Store.InclusionProof(seq, size)
	if err != nil {
		a.writeError(w, r, a.beyondLog(err, "size", size))
		return
	}
	writeJSON(w, http.StatusOK, InclusionProof{Index: index, Size: size, Hashes: nonNil(p)})
}

// handleConsistencyProof serves ?from=M&to=N.
func (a *API) handleConsistencyProof(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "from", "to")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	from, err := treeSize(q, "from")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	to, err := treeSize(q, "to")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if from > to {
		a.writeError(w, r, badRequest("from: %d is larger than to (%d)", from, to))
		return
	}
	p, err := a.cfg.Store.ConsistencyProof(from, to)
	if err != nil {
		a.writeError(w, r, a.beyondLog(err, "to", to))
		return
	}
	writeJSON(w, http.StatusOK, ConsistencyProof{Hashes: nonNil(p)})
}

// treeSize parses the required tree size parameter key: a decimal from 1.
func treeSize(q url.Values, key string) (uint64, error) {
	s := q.Get(key)
	if s == "" {
		return 0, badRequest("%s: required (a tree size from 1)", key)
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil || v == 0 {
		return 0, badRequest("%s: %q is not a tree size (an integer from 1)", key, s)
	}
	return v, nil
}

// beyondLog maps a proof's error: the store refuses a tree size beyond
// the durable log (checked in its read, so never racing an append) with
// ErrInvalidQuery, which is the client's parameter key.
func (a *API) beyondLog(err error, key string, size uint64) error {
	if errors.Is(err, store.ErrInvalidQuery) {
		return badRequest("%s: %d is beyond the log, which has %d records", key, size, a.cfg.Store.Len())
	}
	return err
}

func nonNil(hashes []tlog.Hash) []tlog.Hash {
	if hashes == nil {
		return []tlog.Hash{}
	}
	return hashes
}
