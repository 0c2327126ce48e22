package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

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
	recs []*protocol.Record
	// attach, for a request of one record, is what comes with it.
	attach *attachment
	// absentAt holds, for each record, the read timestamp at which it was
	// found not held (0: unknown).
	absentAt []uint64
	results  []PutResult // filled by the writer
	err      error
	done     chan struct{}
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
	return s.putMany(ctx, rs, nil, nil)
}

// attachment is what a record brings into the store with it: blocks
// stored under their CIDs in the record's transaction, and records it
// should also be found by (LinkedFrom) besides its own links.
type attachment struct {
	blocks    []attachedBlock
	backlinks []cid.Cid
}

// attachedBlock is a decision block and its place in its receipt.
type attachedBlock struct {
	data []byte
	item int
	req  *protocol.TransferRequest
}

// Block is a decision block of a receipt the node signs: its encoding,
// and the request it decides (which its encoding holds).
type Block struct {
	Data    []byte
	Request *protocol.TransferRequest
}

// PutReceipt stores a receipt and its decision blocks as Put stores a
// record: the blocks are durable with the receipt, in its transaction,
// and GetBlock reads them; the receipt is found by the consents its
// decisions rely on (LinkedFrom(consent, KindReceipt)), and its decisions
// are in the register (Decisions). Each block must be one of the
// receipt's decisions; the caller, who made them, vouches for their
// content and requests. A receipt already held is answered as
// Put answers it, and its blocks are not written again.
func (s *Store) PutReceipt(ctx context.Context, r *protocol.Record, blocks []Block) (PutResult, error) {
	if r == nil {
		return PutResult{}, errors.New("store: PutReceipt takes a receipt")
	}
	body, ok := r.Receipt()
	if !ok {
		return PutResult{}, errors.New("store: PutReceipt takes a receipt")
	}
	att := &attachment{blocks: make([]attachedBlock, len(blocks))}
	seen := map[string]bool{}
	for i, b := range blocks {
		c := protocol.RecordCID(b.Data)
		item := slices.IndexFunc(body.Decisions, func(l protocol.Link) bool { return l.Equals(c) })
		if item < 0 {
			return PutResult{}, fmt.Errorf("store: block %d (%s) is not a decision of receipt %s", i, c, r.CID())
		}
		if b.Request == nil {
			return PutResult{}, fmt.Errorf("store: block %d (%s) without its request", i, c)
		}
		att.blocks[i] = attachedBlock{data: b.Data, item: item, req: b.Request}
		if c := b.Request.Consent.Cid; !seen[c.KeyString()] {
			seen[c.KeyString()] = true
			att.backlinks = append(att.backlinks, c)
		}
	}
	res, err := s.putMany(ctx, []*protocol.Record{r}, nil, att)
	if err != nil {
		return PutResult{}, err
	}
	return res[0], nil
}

// PutNew is Put for a record the caller has just looked up (Lookup) and
// found not held: it skips Put's own lookup, and the writer's too when it
// can (see Absence). A duplicate is still caught, by the writer, and
// answered as Put answers it. An Absence of another record counts for
// nothing.
func (s *Store) PutNew(ctx context.Context, r *protocol.Record, absent Absence) (PutResult, error) {
	res, err := s.putMany(ctx, []*protocol.Record{r}, &absent, nil)
	if err != nil {
		return PutResult{}, err
	}
	return res[0], nil
}

// putMany stores rs; with absent (for one record), it trusts the caller's
// lookup instead of its own; att (for one record) comes with it.
func (s *Store) putMany(ctx context.Context, rs []*protocol.Record, absent *Absence, att *attachment) ([]PutResult, error) {
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
	// again inside its transaction, so a race only costs that trip; what
	// it needs to check is only what was committed after this lookup.
	var fresh []*protocol.Record
	var freshAt []int
	var absentAt []uint64
	for i, r := range rs {
		if absent != nil {
			fresh, freshAt = append(fresh, r), append(freshAt, i)
			at := uint64(0) // an Absence of another record: the writer reads
			if absent.c.Equals(r.CID()) {
				at = absent.readTs
			}
			absentAt = append(absentAt, at)
			continue
		}
		seq, readTs, err := s.lookupSeqAt(r.CID())
		switch {
		case err == nil:
			results[i] = PutResult{Seq: seq}
		case errors.Is(err, ErrNotFound):
			fresh, freshAt, absentAt = append(fresh, r), append(freshAt, i), append(absentAt, readTs)
		default:
			return nil, err
		}
	}
	// Hand the records over in chunks of at most MaxBatch, all queued
	// before waiting for any, so one caller's records keep their order.
	var reqs []*putRequest
	for start := 0; start < len(fresh); start += s.opts.MaxBatch {
		end := min(start+s.opts.MaxBatch, len(fresh))
		req := &putRequest{recs: fresh[start:end], absentAt: absentAt[start:end], attach: att,
			results: make([]PutResult, end-start), done: make(chan struct{})}
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

// WriteStats describe the group commit since Open.
type WriteStats struct {
	// Requests is the number of requests the writer took from its queue:
	// a Put's, or a PutMany's in chunks of at most MaxBatch records.
	Requests uint64
	// Txns is the number of Badger transactions committed: more than
	// Batches only when a batch was split. Badger syncs commits that wait
	// for it together, so there may be fewer fsyncs than Txns.
	Txns uint64
	// Written is the number of new records written.
	Written uint64
}

// WriteStats returns the writer's counters; Written/Txns is the number of
// records each commit carried. After Close it returns zeros.
func (s *Store) WriteStats() WriteStats {
	if err := s.enter(); err != nil {
		return WriteStats{}
	}
	defer s.leave()
	return WriteStats{Requests: s.stats.requests.Load(), Txns: s.stats.txns.Load(), Written: s.stats.written.Load()}
}
