package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Gossip and sync can deliver a record before what authorises it: a
// consent before its issuer's accreditation, when the two come from
// different peers or are validated concurrently. Such a record is Ignored
// (the sender did no wrong) and parked here, under what it waits for:
//
//   - refused as unknown_reference: the missing record's CID; it is tried
//     again when a record of that CID is accepted;
//   - refused as unauthorized_issuer: its issuer; it is tried again when an
//     accreditation whose subject is that issuer is accepted, the only
//     record that can make a refused issuer entitled (protocol's
//     Authorisation).
//
// A retry that fails for want of something else parks it again under
// that. A parked record is dropped parkedTTL after it was first parked,
// however often it was retried, and never retried because an unrelated
// record arrived: what one member parks costs the node nothing until what
// it waits for comes. Parking is bounded in total and per peer that sent
// the records, so that one member cannot fill it; what does not fit waits
// for the next sync.
const (
	maxParked        = 10_000
	maxParkedPerPeer = 1_000
	parkedTTL        = 10 * time.Minute
	// recentArrivals is how many accepted records parking remembers, to
	// release at once a record whose dependency was accepted while it was
	// being judged. Past it, such a record is retried once, to be safe.
	recentArrivals = 4096
)

// waitKey is what a parked record waits for: a record (ref) or an
// accreditation of an issuer (issuer); exactly one is set.
type waitKey struct {
	ref    cid.Cid
	issuer peer.ID
}

// waitsFor says what the refusal err of r waits for, and false when err
// is not a refusal for want of a dependency.
func waitsFor(r *protocol.Record, err error) (waitKey, bool) {
	switch protocol.CodeOf(err) {
	case protocol.CodeUnknownReference:
		ref, ok := protocol.MissingReference(err)
		return waitKey{ref: ref}, ok
	case protocol.CodeUnauthorizedIssuer:
		return waitKey{issuer: r.Issuer()}, true
	}
	return waitKey{}, false
}

// arrivalOf is what an accepted record may satisfy: itself, and for an
// accreditation, its subject.
func arrivalOf(r *protocol.Record) [2]waitKey {
	keys := [2]waitKey{{ref: r.CID()}}
	if a, ok := r.Accreditation(); ok {
		if id, err := protocol.ParsePeerID(a.Subject); err == nil { // memoised: decoding parsed it
			keys[1] = waitKey{issuer: id}
		}
	}
	return keys
}

type parkedRecord struct {
	rec     *protocol.Record
	from    peer.ID
	since   time.Time // first parked; never refreshed
	key     waitKey   // what it waits for, while waiting
	waiting bool      // in parking.waiting under key
	gone    bool      // dropped: accepted, refused, expired
}

type parking struct {
	mu      sync.Mutex
	records map[cid.Cid]*parkedRecord // waiting, or queued or taken for a retry
	waiting map[waitKey]map[cid.Cid]*parkedRecord
	perPeer map[peer.ID]int
	// order holds records in the order they were first parked, for
	// expiry; dropped ones stay until they reach the front (compact).
	order []*parkedRecord
	ready []*parkedRecord // released, for the retry loop
	wake  chan struct{}   // capacity 1: a retry is due
	// gen counts accepted records; recent[g%recentArrivals] is what the
	// g-th satisfied.
	gen    uint64
	recent [recentArrivals][2]waitKey
	events *prometheus.CounterVec
	// onExpire, if set, is called (under mu) for each record that expires.
	onExpire func()
}

func newParking() *parking {
	return &parking{
		records: map[cid.Cid]*parkedRecord{},
		waiting: map[waitKey]map[cid.Cid]*parkedRecord{},
		perPeer: map[peer.ID]int{},
		wake:    make(chan struct{}, 1),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_ingest_parking_total",
			Help: "Records parked to wait for what authorises them, by event: parked, released (for a retry, once what they wait for arrived), expired, full (not parked: parking is full), peer_full (not parked: the sending peer's share is full). Retries count in entente_ingest_total{source=\"parked\"}.",
		}, []string{"event"}),
	}
}

// seen is the count of accepted records; a caller takes it before judging
// a record it may park, and hands it to add or again.
func (p *parking) seen() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// add parks r, sent by from (empty when no peer is known), waiting for
// key; seen is the count of accepted records before r was judged. It
// reports false, with the event, when r does not fit.
func (p *parking) add(r *protocol.Record, from peer.ID, key waitKey, seen uint64, now time.Time) (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if _, ok := p.records[r.CID()]; ok {
		return true, ""
	}
	if len(p.records) >= maxParked {
		p.events.WithLabelValues("full").Inc()
		return false, "full"
	}
	if p.perPeer[from] >= maxParkedPerPeer {
		p.events.WithLabelValues("peer_full").Inc()
		return false, "peer_full"
	}
	pr := &parkedRecord{rec: r, from: from, since: now}
	p.records[r.CID()] = pr
	p.perPeer[from]++
	p.order = append(p.order, pr)
	p.events.WithLabelValues("parked").Inc()
	p.place(pr, key, seen)
	return true, ""
}

// again parks pr once more after a retry that failed for want of key,
// unless it has expired meanwhile.
func (p *parking) again(pr *parkedRecord, key waitKey, seen uint64, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	if pr.gone {
		return
	}
	p.place(pr, key, seen)
}

// done drops pr after a retry that settled it (accepted or refused).
func (p *parking) done(pr *parkedRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop(pr)
}

// place makes pr wait for key, or releases it at once when key arrived
// since seen.
func (p *parking) place(pr *parkedRecord, key waitKey, seen uint64) {
	if p.arrivedSince(key, seen) {
		p.release(pr)
		return
	}
	pr.key, pr.waiting = key, true
	w := p.waiting[key]
	if w == nil {
		w = map[cid.Cid]*parkedRecord{}
		p.waiting[key] = w
	}
	w[pr.rec.CID()] = pr
}

func (p *parking) arrivedSince(key waitKey, seen uint64) bool {
	if p.gen-seen > recentArrivals {
		return true
	}
	for g := seen + 1; g <= p.gen; g++ {
		if a := p.recent[g%recentArrivals]; a[0] == key || a[1] == key {
			return true
		}
	}
	return false
}

// arrived notes an accepted record and releases what waits for it.
func (p *parking) arrived(r *protocol.Record, now time.Time) {
	keys := arrivalOf(r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.recent[p.gen%recentArrivals] = keys
	if len(p.records) == 0 {
		return
	}
	p.expire(now)
	for _, k := range keys {
		if k == (waitKey{}) {
			continue
		}
		for _, pr := range p.waiting[k] {
			p.release(pr)
		}
	}
}

// release queues pr for the retry loop.
func (p *parking) release(pr *parkedRecord) {
	p.unwait(pr)
	p.ready = append(p.ready, pr)
	p.events.WithLabelValues("released").Inc()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take returns the released records that have not expired.
func (p *parking) take(now time.Time) []*parkedRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	out := p.ready[:0:0]
	for _, pr := range p.ready {
		if !pr.gone {
			out = append(out, pr)
		}
	}
	p.ready = nil
	return out
}

func (p *parking) unwait(pr *parkedRecord) {
	if !pr.waiting {
		return
	}
	pr.waiting = false
	if w := p.waiting[pr.key]; w != nil {
		delete(w, pr.rec.CID())
		if len(w) == 0 {
			delete(p.waiting, pr.key)
		}
	}
}

func (p *parking) drop(pr *parkedRecord) {
	if pr.gone {
		return
	}
	pr.gone = true
	p.unwait(pr)
	delete(p.records, pr.rec.CID())
	if p.perPeer[pr.from]--; p.perPeer[pr.from] <= 0 {
		delete(p.perPeer, pr.from)
	}
}

// expire drops the records parked parkedTTL or more before now, and
// compacts order.
func (p *parking) expire(now time.Time) {
	i := 0
	for ; i < len(p.order); i++ {
		pr := p.order[i]
		if !pr.gone {
			if now.Sub(pr.since) < parkedTTL {
				break
			}
			p.drop(pr)
			p.events.WithLabelValues("expired").Inc()
			if p.onExpire != nil {
				p.onExpire()
			}
		}
		p.order[i] = nil
	}
	p.order = p.order[i:]
	if len(p.order) > 2*len(p.records)+64 {
		live := make([]*parkedRecord, 0, len(p.records))
		for _, pr := range p.order {
			if !pr.gone {
				live = append(live, pr)
			}
		}
		p.order = live
	}
}

// count is the number of parked records at now.
func (p *parking) count(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire(now)
	return len(p.records)
}

// retrySweep is how often the retry loop drops expired records when
// nothing else does.
const retrySweep = time.Minute

// retryParked is the loop that retries released records.
func (p *Pipeline) retryParked(ctx context.Context) {
	sweep := time.NewTicker(retrySweep)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			p.parked.count(p.cfg.Now())
			continue
		case <-p.parked.wake:
		}
		for _, pr := range p.parked.take(p.cfg.Now()) {
			if ctx.Err() != nil {
				return
			}
			seen := p.parked.seen()
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			acc, err := p.Ingest(rctx, pr.rec, service.SourceParked)
			cancel()
			if key, ok := waitsFor(pr.rec, err); ok {
				p.parked.again(pr, key, seen, p.cfg.Now())
				// It waits again, or expired (which the summary
				// counts): no refusal.
				p.tally.repark(string(protocol.CodeOf(err)))
				continue
			}
			p.parked.done(pr)
			if err == nil && acc.New {
				p.log.Debug("parked record accepted", "cid", pr.rec.CID().String())
			}
		}
	}
}
