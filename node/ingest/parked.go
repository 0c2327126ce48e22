package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Gossip can deliver a record before what authorises it: a consent before
// its issuer's accreditation, when the two come from different peers or
// are validated concurrently. Such a record is Ignored (the sender did no
// wrong) and parked here; each time the node accepts a new record it tries
// the parked ones again, so a record waits for its dependencies instead of
// being lost. Parking is bounded in count and time.
const (
	maxParked = 10_000
	parkedTTL = 10 * time.Minute
)

type parkedRecord struct {
	rec   *protocol.Record
	since time.Time
}

type parking struct {
	mu      sync.Mutex
	records map[cid.Cid]parkedRecord
	wake    chan struct{} // capacity 1: a retry is due
}

func newParking() *parking {
	return &parking{records: map[cid.Cid]parkedRecord{}, wake: make(chan struct{}, 1)}
}

// park keeps r for a later retry; it reports false when parking is full.
func (p *parking) park(r *protocol.Record, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.records[r.CID()]; ok {
		return true
	}
	if len(p.records) >= maxParked {
		return false
	}
	p.records[r.CID()] = parkedRecord{rec: r, since: now}
	return true
}

// due signals the retry loop; it never blocks.
func (p *parking) due() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// take removes and returns the parked records, dropping expired ones.
func (p *parking) take(now time.Time) []*protocol.Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*protocol.Record, 0, len(p.records))
	for c, pr := range p.records {
		delete(p.records, c)
		if now.Sub(pr.since) < parkedTTL {
			out = append(out, pr.rec)
		}
	}
	return out
}

func (p *parking) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

// retryParked is the loop that retries parked records whenever the
// pipeline accepts a new one.
func (p *Pipeline) retryParked(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.parked.wake:
		}
		for _, r := range p.parked.take(p.cfg.Now()) {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			acc, err := p.Ingest(rctx, r, service.SourceParked)
			cancel()
			switch {
			case err == nil:
				if acc.New {
					p.log.Debug("parked record accepted", "cid", r.CID().String())
				}
			case waitsForDependency(err):
				p.parked.park(r, p.cfg.Now()) // still waiting; keeps its TTL from now
			}
		}
	}
}
