package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"golang.org/x/mod/sumdb/tlog"

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
	results  []PutResult
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
		req := &putRequest{recs: fresh[start:end], absentAt: absentAt[start:end], attach: att, done: make(chan struct{})}
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

// The write path is a pipeline of two goroutines. The writer takes whatever
// is queued (up to MaxBatch records), assigns seqs, stages the records in a
// Badger transaction and commits it asynchronously; it goes on to the next
// batch while Badger writes and syncs that one (Badger's own write loop
// coalesces the commits waiting for it into one fsync). The acker waits for
// the commits in order and, once a commit is durable, makes it visible to
// readers (readTs), updates the counters and acknowledges its callers. A
// record in a commit still in flight is in pending, so a second put of it
// is answered with its seq — and acknowledged after it, in order.

// maxInFlight bounds the commits the writer runs ahead of the acker.
const maxInFlight = 4

// commitItem is one Badger transaction in flight, or (txn == false) just
// acknowledgements owed once the commits before it are durable.
type commitItem struct {
	n       int // records of the batch this commit took (new and duplicate)
	ts      uint64
	after   meta               // the store's meta once this commit is durable
	fresh   []*protocol.Record // records new in this commit
	done    chan error         // the commit's outcome, from Badger's callback
	acks    []*putRequest      // to acknowledge once this item is through
	results []PutResult        // shared by acks' requests, in order
	err     error              // a staging error: no commit was made
	tree    Tree               // the log's tree once this commit is durable
}

// writeLoop is the writer; edge is the log's right edge, its own from now
// on.
func (s *Store) writeLoop(edge frontier) {
	defer close(s.writerDone)
	inflight := make(chan *commitItem, maxInFlight)
	ackerDone := make(chan struct{})
	go s.ackLoop(inflight, ackerDone)
	defer func() {
		close(inflight)
		<-ackerDone
	}()
	var (
		carry  *putRequest // taken from the queue but left for the next batch
		batch  []*putRequest
		recs   []*protocol.Record
		absent []uint64
	)
	next := meta{seq: s.seq.Load()} // the writer's view: durable and in flight
	for code := range next.counts {
		next.counts[code] = s.counts[code].Load()
	}
	nextTs := s.readTs.Load() + 1
	pending := newPendingSet(nextTs-1, s.opts.recentRecords)
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
		absent = absent[:0]
		var attached map[*protocol.Record]*attachment
		for _, req := range batch {
			recs = append(recs, req.recs...)
			absent = append(absent, req.absentAt...)
			if req.attach != nil && len(req.recs) == 1 {
				if attached == nil {
					attached = map[*protocol.Record]*attachment{}
				}
				attached[req.recs[0]] = req.attach
			}
		}
		results := make([]PutResult, len(recs))
		s.stats.batches.Add(1)
		err := s.failed()
		for done := 0; done < len(recs) && err == nil; {
			var item *commitItem
			item, err = s.commitPrefix(recs[done:], absent[done:], results[done:], attached, &next, &edge, nextTs, pending)
			if err != nil {
				break
			}
			nextTs++
			done += item.n
			inflight <- item
		}
		clear(recs) // let the records go
		if err != nil {
			s.fail(err)
		}
		inflight <- &commitItem{acks: slices.Clone(batch), results: results, err: err}
		clear(batch) // let the requests go
	}
}

// ackLoop is the acker of the write pipeline (see above).
func (s *Store) ackLoop(inflight <-chan *commitItem, done chan<- struct{}) {
	defer close(done)
	var failure error // the first commit that failed, if any
	for item := range inflight {
		if item.done != nil {
			if err := <-item.done; err != nil && failure == nil {
				failure = fmt.Errorf("store: commit: %w", err)
				s.fail(err)
			}
			if failure == nil {
				s.published(item)
			}
			continue
		}
		err := item.err
		if err == nil {
			err = failure
		}
		i := 0
		for _, req := range item.acks {
			if err != nil {
				req.err = err
			} else {
				req.results = item.results[i : i+len(req.recs) : i+len(req.recs)]
			}
			i += len(req.recs)
			close(req.done)
		}
	}
}

// published makes a durable commit visible: readers see it from now on.
func (s *Store) published(item *commitItem) {
	s.treeHead.Store(&treeAt{readTs: item.ts, tree: item.tree}) // before readTs, which it holds at
	s.readTs.Store(item.ts)
	// Let compaction drop the meta key's older versions (but those a
	// backup reads).
	s.setDiscardTs(item.ts - 1)
	s.seq.Store(item.after.seq)
	for code := range item.after.counts {
		s.counts[code].Store(item.after.counts[code])
	}
	evidence := false
	for _, r := range item.fresh {
		s.cache.add(r)
		evidence = evidence || r.Kind() != protocol.KindReceipt
	}
	if evidence {
		s.evidenceEpoch.Add(1) // after readTs: see EvidenceEpoch
	}
	if s.opts.OnCommit != nil && len(item.fresh) > 0 {
		s.opts.OnCommit(item.fresh)
	}
	s.stats.txns.Add(1)
	s.stats.written.Add(uint64(len(item.fresh)))
}

// fail puts the store in its failed state: whether a failed commit reached
// the disk is unknown, so the seqs in memory may no longer match it, and
// every later write is refused rather than risk reusing a seq.
func (s *Store) fail(err error) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	if s.writeErr == nil {
		s.writeErr = fmt.Errorf("store: an earlier write failed; reopen the store: %w", err)
		s.log.Error("store write failed; refusing further writes", "err", err)
	}
}

func (s *Store) failed() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.writeErr
}

// pendingSet is the writer's record of what it committed that readers may
// not see yet, and of what they have seen only lately. Only the writer
// touches it.
type pendingSet struct {
	seqs map[string]uint64 // CID key -> seq
	byTs []pendingCommit   // in commit order
	// recentSeqs holds the records of the last commits readers can see,
	// up to recentRecords of them; every commit after floor is in seqs or
	// recentSeqs. A record found absent at a read timestamp at or after
	// floor is new unless one of the two holds it, which spares the
	// writer a Badger read of each record (see Absence).
	recentSeqs    map[string]uint64
	recentRecords []recentRecord // FIFO of recentSeqs' keys
	maxRecent     int
	floor         uint64
}

const defaultRecentRecords = 16384

type pendingCommit struct {
	ts   uint64
	keys []string
	seqs []uint64
}

type recentRecord struct {
	ts  uint64
	key string
}

// newPendingSet starts the writer's sets; readers see every commit up to
// readTs, and the writer remembers the last maxRecent records it
// committed.
func newPendingSet(readTs uint64, maxRecent int) *pendingSet {
	if maxRecent <= 0 {
		maxRecent = defaultRecentRecords
	}
	return &pendingSet{seqs: map[string]uint64{}, recentSeqs: map[string]uint64{}, maxRecent: maxRecent, floor: readTs}
}

// knownSince reports whether a record found absent at readTs absentAt can
// be known new from the sets alone, without reading Badger.
func (p *pendingSet) knownSince(absentAt uint64) bool {
	return absentAt != 0 && absentAt >= p.floor
}

// add records a commit in flight: its new records.
func (p *pendingSet) add(ts uint64, recs []*protocol.Record, results []PutResult) {
	pc := pendingCommit{ts: ts}
	for i, r := range recs {
		if results[i].New {
			k := r.CID().KeyString()
			p.seqs[k] = results[i].Seq
			pc.keys = append(pc.keys, k)
			pc.seqs = append(pc.seqs, results[i].Seq)
		}
	}
	p.byTs = append(p.byTs, pc)
}

// forget drops the commits a transaction reading at readTs sees.
func (p *pendingSet) forget(readTs uint64) {
	i := 0
	for ; i < len(p.byTs) && p.byTs[i].ts <= readTs; i++ {
		pc := p.byTs[i]
		for j, k := range pc.keys {
			delete(p.seqs, k)
			p.rememberRecord(pc.ts, k, pc.seqs[j])
		}
	}
	p.byTs = p.byTs[i:]
}

func (p *pendingSet) rememberRecord(ts uint64, key string, seq uint64) {
	if len(p.recentRecords) == p.maxRecent {
		old := p.recentRecords[0]
		delete(p.recentSeqs, old.key)
		p.floor = max(p.floor, old.ts)
		p.recentRecords = p.recentRecords[1:]
	}
	p.recentSeqs[key] = seq
	p.recentRecords = append(p.recentRecords, recentRecord{ts, key})
}

// commitPrefix stages as long a prefix of recs as fits in one Badger
// transaction, starts its commit at ts and returns it as an item in
// flight; next and edge are advanced to the meta and the log after it.
func (s *Store) commitPrefix(recs []*protocol.Record, absent []uint64, out []PutResult, attached map[*protocol.Record]*attachment, next *meta, edge *frontier, ts uint64, pending *pendingSet) (*commitItem, error) {
	limit := len(recs)
	for {
		readTs := s.readTs.Load()
		pending.forget(readTs)
		txn := s.db.NewTransactionAt(readTs, true)
		staged := *edge // a transaction too big is staged again, from the same edge
		item, fitted, err := s.stage(txn, recs[:limit], absent, out, attached, *next, &staged, pending)
		if errors.Is(err, badger.ErrTxnTooBig) {
			txn.Discard()
			if fitted == 0 {
				return nil, fmt.Errorf("record %s does not fit in a transaction", recs[0].CID())
			}
			limit = fitted
			continue
		}
		if err != nil {
			txn.Discard()
			return nil, err
		}
		pending.add(ts, recs[:limit], out[:limit])
		item.n = limit
		item.ts = ts
		item.done = make(chan error, 1)
		if err := txn.CommitAt(ts, func(err error) { item.done <- err }); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		*next = item.after
		*edge = staged
		return item, nil
	}
}

// stage adds recs and the meta after them to txn, filling out. A record
// held, in flight, or listed earlier in recs is a duplicate; absent[i] is
// when recs[i] was last found absent (0: unknown). On ErrTxnTooBig it
// reports how many records fitted whole (fewer when the meta did not fit
// after them). edge is advanced past the records staged.
func (s *Store) stage(txn *badger.Txn, recs []*protocol.Record, absent []uint64, out []PutResult, attached map[*protocol.Record]*attachment, m meta, edge *frontier, pending *pendingSet) (*commitItem, int, error) {
	item := &commitItem{}
	var staged map[string]uint64 // records of this transaction, when not read back from it
	for i, r := range recs {
		key := r.CID().KeyString()
		if seq, ok := pending.seqs[key]; ok {
			out[i] = PutResult{Seq: seq}
			continue
		}
		if pending.knownSince(absent[i]) {
			// Everything committed since the caller looked is in flight
			// (checked above) or recent; only this transaction's records
			// remain to compare with.
			seq, ok := pending.recentSeqs[key]
			if !ok {
				seq, ok = staged[key]
			}
			if ok {
				out[i] = PutResult{Seq: seq}
				continue
			}
		} else {
			// Badger serves reads of keys this transaction wrote from its
			// pending writes, so this also catches a record listed twice.
			seq, err := txnSeq(txn, r.CID())
			if err == nil {
				out[i] = PutResult{Seq: seq}
				continue
			}
			if !errors.Is(err, ErrNotFound) {
				return nil, i, err
			}
		}
		seq := m.seq + 1
		if staged == nil {
			staged = map[string]uint64{}
		}
		staged[key] = seq
		s.held.add(r.CID()) // before the commit that makes it visible
		var hashes []tlog.Hash
		if !s.opts.withoutLog { // benchmark only: see Options.withoutLog
			var err error
			if hashes, err = edge.append(LeafHash(r)); err != nil {
				return nil, i, err
			}
		}
		if err := setRecord(txn, r, seq, hashes, attached[r]); err != nil {
			return nil, i, err
		}
		code, _ := kindCode(r.Kind()) // setRecord checked it
		m.seq = seq
		m.counts[code]++
		out[i] = PutResult{Seq: seq, New: true}
		item.fresh = append(item.fresh, r)
	}
	if err := txn.Set(metaKey(), m.marshal()); err != nil {
		return nil, max(len(recs)-1, 0), err
	}
	item.after = m
	var err error
	if item.tree, err = edge.tree(); err != nil {
		return nil, max(len(recs)-1, 0), err
	}
	return item, len(recs), nil
}

// setRecord adds a record (with its seq), its seq key (its CID and the log
// hashes its leaf adds), its index keys and what is attached to it.
func setRecord(txn *badger.Txn, r *protocol.Record, seq uint64, hashes []tlog.Hash, att *attachment) error {
	var backlinks []cid.Cid
	if att != nil {
		backlinks = att.backlinks
		for _, b := range att.blocks {
			c := protocol.RecordCID(b.data)
			if err := txn.Set(blockKey(c), blockValue(b.data)); err != nil {
				return err
			}
			if err := setDecision(txn, seq, b.item, c, b.req); err != nil {
				return err
			}
		}
	}
	idx, err := indexKeys(r, seq, backlinks)
	if err != nil {
		return err
	}
	c := r.CID()
	if err := txn.Set(recordKey(c), recordValue(seq, r)); err != nil {
		return err
	}
	if err := txn.Set(seqKey(seq), seqValue(c, hashes)); err != nil {
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
	return WriteStats{Batches: s.stats.batches.Load(), Txns: s.stats.txns.Load(), Written: s.stats.written.Load()}
}
