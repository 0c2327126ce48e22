package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/entente-net/entente/protocol"
)

// PutResult says where a record stands after a put.
type PutResult struct {
	// Seq is the record's acceptance order: 1 for the first record the
	// store accepted, and dense from there.
	Seq uint64
	// New is false when the store already held the record.
	New bool
}

// putRequest carries one caller's records to the writer. The writer fills
// results (or err) and then closes done.
type putRequest struct {
	recs    []*protocol.Record
	results []PutResult
	err     error
	done    chan struct{}
}

// Put stores r, which the caller has verified, and returns once it is
// durable (fsynced) — or was already held, in which case it returns the
// existing seq with New false and writes nothing.
//
// Put waits for room in the writer's queue and then for the write; ctx
// bounds both waits. If ctx ends after the record was handed to the
// writer, Put returns ctx's error but the record may still be written.
func (s *Store) Put(ctx context.Context, r *protocol.Record) (PutResult, error) {
	res, err := s.PutMany(ctx, []*protocol.Record{r})
	if err != nil {
		return PutResult{}, err
	}
	return res[0], nil
}

// PutMany stores records as Put does, in order, and returns a result for
// each. It is not atomic: on error, some of the records may have been
// stored (with consecutive seqs). A record listed twice gets one seq; the
// second result has New false.
func (s *Store) PutMany(ctx context.Context, rs []*protocol.Record) ([]PutResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: put: %w", err)
	}
	for i, r := range rs {
		if r == nil {
			return nil, fmt.Errorf("store: put: record %d is nil", i)
		}
	}
	results := make([]PutResult, len(rs))
	// Most duplicates (gossip delivers every record many times) are
	// answered here, without a trip through the writer. The writer checks
	// again inside its transaction, so a race only costs that trip.
	var fresh []*protocol.Record
	var freshAt []int
	for i, r := range rs {
		seq, err := s.lookupSeq(r.CID())
		switch {
		case err == nil:
			results[i] = PutResult{Seq: seq}
		case errors.Is(err, ErrNotFound):
			fresh = append(fresh, r)
			freshAt = append(freshAt, i)
		default:
			return nil, err
		}
	}
	// Hand the records over in chunks of at most MaxBatch, all queued
	// before waiting for any, so one caller's records keep their order.
	var reqs []*putRequest
	for start := 0; start < len(fresh); start += s.opts.MaxBatch {
		end := min(start+s.opts.MaxBatch, len(fresh))
		req := &putRequest{recs: fresh[start:end], done: make(chan struct{})}
		select {
		case s.queue <- req:
			reqs = append(reqs, req)
		case <-ctx.Done():
			return nil, fmt.Errorf("store: put: %w", ctx.Err())
		case <-s.quit:
			return nil, ErrClosed
		}
	}
	n := 0
	for _, req := range reqs {
		select {
		case <-req.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("store: put: %w", ctx.Err())
		}
		if req.err != nil {
			return nil, req.err
		}
		for _, res := range req.results {
			results[freshAt[n]] = res
			n++
		}
	}
	return results, nil
}

// writeLoop is the one goroutine that writes records. It takes whatever
// is queued, up to MaxBatch records, writes the batch in one transaction
// with one fsync, and acknowledges every request in it. While it syncs,
// the queue fills, so the busier the store, the larger the batches.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	var (
		carry *putRequest // taken from the queue but left for the next batch
		batch []*putRequest
		recs  []*protocol.Record
	)
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-s.queue:
			case <-s.stopWriter:
				// No Put can enqueue any more; write what is left.
				select {
				case first = <-s.queue:
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		n := len(first.recs)
	drain:
		for n < s.opts.MaxBatch {
			select {
			case req := <-s.queue:
				if n+len(req.recs) > s.opts.MaxBatch {
					carry = req
					break drain
				}
				batch = append(batch, req)
				n += len(req.recs)
			default:
				break drain
			}
		}

		recs = recs[:0]
		for _, req := range batch {
			recs = append(recs, req.recs...)
		}
		out := make([]PutResult, len(recs)) // shared by the batch's requests
		err := s.writeErr
		if err == nil {
			s.stats.batches.Add(1)
			if werr := s.writeBatch(recs, out); werr != nil {
				// Whether a failed commit reached the disk is unknown, so
				// the in-memory seq may no longer match it: refuse all
				// further writes rather than risk reusing a seq.
				err = fmt.Errorf("store: write: %w", werr)
				s.writeErr = fmt.Errorf("store: an earlier write failed; reopen the store: %w", werr)
				s.log.Error("store write failed; refusing further writes", "records", len(recs), "err", werr)
			}
		}
		i := 0
		for _, req := range batch {
			if err != nil {
				req.err = err
			} else {
				req.results = out[i : i+len(req.recs) : i+len(req.recs)]
			}
			i += len(req.recs)
			close(req.done)
		}
		clear(batch) // let the requests go
		clear(recs)
	}
}

// writeBatch writes recs, filling out, in as few transactions as Badger
// allows (usually one).
func (s *Store) writeBatch(recs []*protocol.Record, out []PutResult) error {
	for len(recs) > 0 {
		n, err := s.commitPrefix(recs, out)
		if err != nil {
			return err
		}
		recs, out = recs[n:], out[n:]
	}
	return nil
}

// commitPrefix writes as long a prefix of recs as fits in one Badger
// transaction, commits it (one fsync), and returns its length.
func (s *Store) commitPrefix(recs []*protocol.Record, out []PutResult) (int, error) {
	limit := len(recs)
	for {
		readTs := s.readTs.Load()
		txn := s.db.NewTransactionAt(readTs, true)
		m, fitted, err := s.stage(txn, recs[:limit], out)
		if errors.Is(err, badger.ErrTxnTooBig) {
			txn.Discard()
			if fitted == 0 {
				return 0, fmt.Errorf("record %s does not fit in a transaction", recs[0].CID())
			}
			limit = fitted
			continue
		}
		if err != nil {
			txn.Discard()
			return 0, err
		}
		if err := txn.CommitAt(readTs+1, nil); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		// Durable now (SyncWrites): let readers see it, and let compaction
		// drop the meta key's older versions.
		s.readTs.Store(readTs + 1)
		s.db.SetDiscardTs(readTs)
		s.stats.txns.Add(1)
		s.seq.Store(m.seq)
		for code := range m.counts {
			s.counts[code].Store(m.counts[code])
		}
		for i, r := range recs[:limit] {
			if out[i].New {
				s.cache.add(r)
				s.stats.written.Add(1)
			}
		}
		return limit, nil
	}
}

// stage adds recs and the updated meta to txn, filling out. On
// ErrTxnTooBig it reports how many records fitted whole (fewer when the
// meta did not fit after them).
func (s *Store) stage(txn *badger.Txn, recs []*protocol.Record, out []PutResult) (meta, int, error) {
	m := meta{seq: s.seq.Load()}
	for code := range m.counts {
		m.counts[code] = s.counts[code].Load()
	}
	for i, r := range recs {
		// Badger serves reads of keys this transaction wrote from its
		// pending writes, so this also catches a record listed twice.
		seq, err := txnSeq(txn, r.CID())
		if err == nil {
			out[i] = PutResult{Seq: seq}
			continue
		}
		if !errors.Is(err, ErrNotFound) {
			return m, i, err
		}
		seq = m.seq + 1
		if err := setRecord(txn, r, seq); err != nil {
			return m, i, err
		}
		code, _ := kindCode(r.Kind()) // setRecord checked it
		m.seq = seq
		m.counts[code]++
		out[i] = PutResult{Seq: seq, New: true}
	}
	if err := txn.Set(metaKey(), m.marshal()); err != nil {
		return m, max(len(recs)-1, 0), err
	}
	return m, len(recs), nil
}

// setRecord adds a record (with its seq), the seq-to-CID mapping and the
// record's index keys.
func setRecord(txn *badger.Txn, r *protocol.Record, seq uint64) error {
	idx, err := indexKeys(r, seq)
	if err != nil {
		return err
	}
	c := r.CID()
	if err := txn.Set(recordKey(c), recordValue(seq, r)); err != nil {
		return err
	}
	if err := txn.Set(seqKey(seq), c.Bytes()); err != nil {
		return err
	}
	for _, k := range idx {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// WriteStats describe the group commit since Open.
type WriteStats struct {
	// Batches is the number of batches the writer took from its queue.
	Batches uint64
	// Txns is the number of Badger transactions committed, each with one
	// fsync: more than Batches only when a batch was split.
	Txns uint64
	// Written is the number of new records written.
	Written uint64
}

// WriteStats returns the writer's counters; Written/Txns is the number of
// records each fsync carried. After Close it returns zeros.
func (s *Store) WriteStats() WriteStats {
	if err := s.enter(); err != nil {
		return WriteStats{}
	}
	defer s.leave()
	return WriteStats{Batches: s.stats.batches.Load(), Txns: s.stats.txns.Load(), Written: s.stats.written.Load()}
}
