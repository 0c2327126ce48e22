package store

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/ipfs/go-cid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

// The write path is a pipeline of two goroutines, the writer and the
// acker.
//
// The writer keeps one Badger transaction open and stages into it each
// request as it takes it from the queue: each record's duplicate check,
// seq, log hashes (the writer owns the log's right edge) and keys. It
// commits the open transaction as soon as no commit of its own is in
// flight. So a commit carries what arrived while the one before it was
// being written and synced, staged meanwhile: the commits grow with the
// load and with the disk's latency, and each costs one sync (Badger syncs
// its write-ahead log once per transaction, so commits do not share
// syncs). Only a transaction that is full — MaxBatch records, or as large
// as Badger takes — is committed while another is in flight, up to
// maxInFlight of them.
//
// The acker waits for the commits in order and, once a commit is durable,
// makes it visible to readers (readTs), updates the counters and
// acknowledges the requests whose last record it holds. A record in a
// commit still in flight is in pending, so a second put of it is answered
// with its seq — and acknowledged after it, in order.

// maxInFlight bounds the commits handed to Badger and not yet durable.
const maxInFlight = 2

// commitItem is one Badger transaction in flight, or (done == nil) just
// acknowledgements owed once the commits before it are durable.
type commitItem struct {
	ts    uint64
	after meta               // the store's meta once this commit is durable
	fresh []*protocol.Record // records new in this commit
	tree  Tree               // the log's tree once this commit is durable
	done  chan error         // the commit's outcome, from Badger's callback
	acks  []*putRequest      // to acknowledge once this item is through
	err   error              // what to answer acks with (nil: their results)
}

// writer is the state of the write loop; only its goroutine touches it.
type writer struct {
	s        *Store
	next     meta     // the meta after the commits made (durable or in flight)
	edge     frontier // the log's right edge after them
	nextTs   uint64   // the next commit's timestamp
	pending  *pendingSet
	open     *openTxn
	inFlight int                // commits made and not yet through Badger
	through  chan struct{}      // Badger's callback: a commit is through
	acker    chan<- *commitItem // to the acker, in commit order
	entries  []entry            // scratch: one record's keys and values
	// maxSize and maxCount are how large Badger lets a transaction grow
	// (Badger's own accounting, txn.checkSize).
	maxSize, maxCount int64
}

// openTxn is the transaction being staged.
type openTxn struct {
	txn    *badger.Txn
	m      meta     // after the records staged
	edge   frontier // after them
	n      int      // records staged, new or duplicate
	fresh  []*protocol.Record
	staged map[string]uint64 // CID key -> seq, of fresh
	// size and count are the transaction's size as Badger counts it.
	size, count int64
	acks        []*putRequest // requests whose last record it holds
}

// entry is a key and its value, staged or about to be.
type entry struct{ k, v []byte }

func (e *entry) badgerSize() int64 { return int64(len(e.k)+len(e.v)) + 12 } // txn.checkSize's, an upper bound

// errTooLarge refuses one record that no transaction could hold.
var errTooLarge = errors.New("does not fit in a transaction")

// writeLoop is the writer; edge is the log's right edge, its own from now
// on.
func (s *Store) writeLoop(edge frontier) {
	defer close(s.writerDone)
	acker := make(chan *commitItem, 2*maxInFlight+2)
	ackerDone := make(chan struct{})
	go s.ackLoop(acker, ackerDone)
	defer func() {
		close(acker)
		<-ackerDone
	}()
	w := &writer{
		s:        s,
		next:     meta{seq: s.seq.Load()},
		edge:     edge,
		nextTs:   s.readTs.Load() + 1,
		through:  make(chan struct{}, maxInFlight+1),
		acker:    acker,
		maxSize:  s.db.MaxBatchSize(),
		maxCount: s.db.MaxBatchCount(),
	}
	for code := range w.next.counts {
		w.next.counts[code] = s.counts[code].Load()
	}
	w.pending = newPendingSet(w.nextTs-1, s.opts.recentRecords)
	stop := s.stopWriter
	for {
		if w.open != nil && (w.inFlight == 0 || (w.full() && w.inFlight < maxInFlight)) {
			w.commit()
			continue
		}
		if stop == nil && len(s.queue) == 0 && w.open == nil {
			return // stopping, and all written (the acker waits for the disk)
		}
		queue := s.queue
		if w.full() {
			queue = nil // wait for the disk
		}
		select {
		case req := <-queue:
			w.take(req)
		case <-w.through:
			w.inFlight--
		case <-stop:
			stop = nil // no Put can enqueue any more; write what is queued
		}
	}
}

// full reports whether the open transaction holds MaxBatch records.
func (w *writer) full() bool { return w.open != nil && w.open.n >= w.s.opts.MaxBatch }

// take stages the records of req; the commit that holds the last of them
// acknowledges it.
func (w *writer) take(req *putRequest) {
	w.s.stats.requests.Add(1)
	if err := w.s.failed(); err != nil {
		w.answer(err, req)
		return
	}
	var att *attachment
	if len(req.recs) == 1 {
		att = req.attach
	}
	for i, r := range req.recs {
		err := w.stage(r, req.absentAt[i], &req.results[i], att)
		switch {
		case err == nil:
		case errors.Is(err, errTooLarge):
			// Nothing of it was staged, and the store is sound.
			w.answer(fmt.Errorf("store: record %s %w", r.CID(), err), req)
			return
		default:
			w.abort(err, req)
			return
		}
	}
	w.open.acks = append(w.open.acks, req)
}

// stage adds r — found absent at read timestamp absent (0: unknown) —
// to the open transaction, opening one, and committing a full one first,
// as needed; *out is its result.
func (w *writer) stage(r *protocol.Record, absent uint64, out *PutResult, att *attachment) error {
	if w.full() {
		if err := w.commit(); err != nil {
			return err
		}
	}
	if w.open == nil {
		w.begin()
	}
	o := w.open
	if seq, dup, err := w.held(r, absent); err != nil {
		return err
	} else if dup {
		*out = PutResult{Seq: seq}
		o.n++
		return nil
	}
	seq := o.m.seq + 1
	edge := o.edge // the open edge moves only if the record is staged
	var hashes []tlog.Hash
	if !w.s.opts.withoutLog { // benchmark only: see Options.withoutLog
		var err error
		if hashes, err = edge.append(LeafHash(r)); err != nil {
			return err
		}
	}
	var err error
	if w.entries, err = appendRecordEntries(w.entries[:0], r, seq, hashes, att); err != nil {
		return err
	}
	var size int64
	for i := range w.entries {
		size += w.entries[i].badgerSize()
	}
	count := int64(len(w.entries))
	if !w.fits(size, count) {
		if o.n == 0 {
			return errTooLarge
		}
		if err := w.commit(); err != nil {
			return err
		}
		w.begin() // from the same seq and edge
		if o = w.open; !w.fits(size, count) {
			return errTooLarge
		}
	}
	w.s.held.add(r.CID()) // before the commit that makes it visible
	for _, e := range w.entries {
		if err := o.txn.Set(e.k, e.v); err != nil {
			return err
		}
	}
	clear(w.entries)
	code, _ := kindCode(r.Kind()) // appendRecordEntries checked it
	o.m.seq = seq
	o.m.counts[code]++
	o.edge = edge
	o.size += size
	o.count += count
	o.n++
	o.fresh = append(o.fresh, r)
	if o.staged == nil {
		o.staged = map[string]uint64{}
	}
	o.staged[r.CID().KeyString()] = seq
	*out = PutResult{Seq: seq, New: true}
	return nil
}

// fits reports whether a record of size and count (as Badger counts
// them) fits in the open transaction, with the meta after it.
func (w *writer) fits(size, count int64) bool {
	const metaSize = 1 + 1 + 8*numKindCodes + 12 // metaKey, meta.marshal, overhead
	o := w.open
	return o.size+size+metaSize < w.maxSize && o.count+count+1 < w.maxCount
}

// held looks r up among the records staged, in flight and stored: a
// record held, in flight, or staged before is a duplicate, answered
// with its seq.
func (w *writer) held(r *protocol.Record, absent uint64) (uint64, bool, error) {
	key := r.CID().KeyString()
	if seq, ok := w.pending.seqs[key]; ok {
		return seq, true, nil
	}
	if seq, ok := w.open.staged[key]; ok {
		return seq, true, nil
	}
	if w.pending.knownSince(absent) {
		// Everything committed since the caller looked is in flight
		// (checked above) or recent.
		seq, ok := w.pending.recentSeqs[key]
		return seq, ok, nil
	}
	seq, err := txnSeq(w.open.txn, r.CID())
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	return seq, err == nil, err
}

// begin opens a transaction, reading at the last durable commit.
func (w *writer) begin() {
	readTs := w.s.readTs.Load()
	w.pending.forget(readTs)
	w.open = &openTxn{txn: w.s.db.NewTransactionAt(readTs, true), m: w.next, edge: w.edge}
}

// commit hands the open transaction to Badger, once fewer than
// maxInFlight commits are in flight, and the acknowledgements it owes to
// the acker. A failure fails the store, and answers the requests staged
// in the transaction.
func (w *writer) commit() error {
	for w.inFlight >= maxInFlight {
		<-w.through
		w.inFlight--
	}
	o := w.open
	w.open = nil
	tree, err := o.edge.tree()
	if err == nil {
		err = o.txn.Set(metaKey(), o.m.marshal())
	}
	if err != nil {
		w.open = o
		w.abort(err, nil)
		return err
	}
	item := &commitItem{ts: w.nextTs, after: o.m, fresh: o.fresh, tree: tree, done: make(chan error, 1)}
	w.pending.add(item.ts, o.fresh, w.next.seq+1)
	if err := o.txn.CommitAt(item.ts, func(err error) {
		item.done <- err
		w.through <- struct{}{}
	}); err != nil { // (Badger answers through the callback)
		w.s.fail(err)
		item.done <- err
		w.through <- struct{}{}
	}
	w.inFlight++
	w.nextTs++
	w.next, w.edge = o.m, o.edge
	w.acker <- item
	if len(o.acks) > 0 {
		w.acker <- &commitItem{acks: o.acks}
	}
	return nil
}

// abort discards the open transaction after err, fails the store and
// answers with err the requests staged in it, and req.
func (w *writer) abort(err error, req *putRequest) {
	w.s.fail(err)
	var reqs []*putRequest
	if o := w.open; o != nil {
		o.txn.Discard()
		reqs = o.acks
		w.open = nil
	}
	if req != nil {
		reqs = append(reqs, req)
	}
	w.answer(err, reqs...)
}

// answer acknowledges reqs with err, after the commits before.
func (w *writer) answer(err error, reqs ...*putRequest) {
	if len(reqs) > 0 {
		w.acker <- &commitItem{acks: reqs, err: err}
	}
}

// ackLoop is the acker of the write pipeline (see above).
func (s *Store) ackLoop(acker <-chan *commitItem, done chan<- struct{}) {
	defer close(done)
	var failure error // the first commit that failed, if any
	for item := range acker {
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
		for _, req := range item.acks {
			req.err = err
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
	s.appendFresh(item.after.seq-uint64(len(item.fresh))+1, item.fresh) // before the counts: see tail
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
	s.scans.forget(item.fresh) // after readTs: see scanCache
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

// add records a commit in flight: its new records, which have the seqs
// from first on.
func (p *pendingSet) add(ts uint64, fresh []*protocol.Record, first uint64) {
	pc := pendingCommit{ts: ts, keys: make([]string, len(fresh)), seqs: make([]uint64, len(fresh))}
	for i, r := range fresh {
		k := r.CID().KeyString()
		p.seqs[k] = first + uint64(i)
		pc.keys[i], pc.seqs[i] = k, first+uint64(i)
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

// appendRecordEntries appends to dst a record's entries: the record (with
// its seq), its seq key (its CID and the log hashes its leaf adds), its
// index keys and what is attached to it.
func appendRecordEntries(dst []entry, r *protocol.Record, seq uint64, hashes []tlog.Hash, att *attachment) ([]entry, error) {
	var backlinks []cid.Cid
	if att != nil {
		backlinks = att.backlinks
		for _, b := range att.blocks {
			c := protocol.RecordCID(b.data)
			dst = append(dst, entry{blockKey(c), blockValue(b.data)})
			dst = appendDecisionEntries(dst, seq, b.item, c, b.req)
		}
	}
	idx, err := indexKeys(r, seq, backlinks)
	if err != nil {
		return dst, err
	}
	c := r.CID()
	dst = append(dst, entry{recordKey(c), recordValue(seq, r)}, entry{seqKey(seq), seqValue(c, hashes)})
	for _, k := range idx {
		dst = append(dst, entry{k, nil})
	}
	return dst, nil
}
