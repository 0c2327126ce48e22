package deliver

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// The sender's outbox: the entries of the records to push, made as
// records are accepted (package doc, "Sender").

// Accepted makes the outbox entries of a record the node just accepted,
// if its audience is delivered to: durable when it returns, but for a
// receipt, whose entries receiptLoop makes. Ingest calls it for every new
// record (Config.OnAccept).
func (s *Service) Accepted(r *protocol.Record) {
	if r.Kind() == protocol.KindReceipt {
		if r.Issuer() != s.self {
			return // a receipt is delivered by the node that signed it
		}
		// Its entries are made by receiptLoop, many in one write: a
		// receipt answers a verify, which should not wait for a write of
		// its own (a crash before the entries are made is caught up at
		// the next start).
		select {
		case s.receipts <- r:
		case <-s.g.Context().Done():
		}
		return
	}
	aud, err := s.audience(r)
	if err != nil {
		s.log.Error("direct delivery: reading a receipt's decisions failed", "cid", r.CID().String(), "err", err)
		return
	}
	if !aud.Delivered() {
		return
	}
	if err := s.enqueue(r, aud); err != nil {
		s.log.Error("direct delivery: keeping the outbox entries failed", "cid", r.CID().String(), "err", err)
	}
}

// catchUp enqueues every held record delivered to its audience (TLP:RED
// incidents, and the receipts this node signed): enqueue adds only the
// entries missing.
func (s *Service) catchUp() error {
	for _, q := range []store.Query{{Kind: protocol.KindIncident}, {Kind: protocol.KindReceipt, Issuer: s.self}} {
		q.Limit = store.MaxListLimit
		for {
			entries, next, err := s.cfg.Store.List(q)
			if err != nil {
				return err
			}
			for _, e := range entries {
				s.Accepted(e.Record)
			}
			if next == 0 {
				break
			}
			q.After = next
		}
	}
	return nil
}

// audience is r's audience (protocol.AudienceOf); a receipt's is that of
// the decision blocks held (protocol.ReceiptAudience).
func (s *Service) audience(r *protocol.Record) (protocol.Audience, error) {
	if r.Kind() != protocol.KindReceipt {
		return protocol.AudienceOf(r), nil
	}
	blocks, _, err := s.blocksOf(r, false)
	return protocol.ReceiptAudience(blocks), err
}

// blocksOf reads the decision blocks of receipt r that the store holds,
// decoded (through the trust view's cache), and with raw their bytes too.
func (s *Service) blocksOf(r *protocol.Record, raw bool) ([]*protocol.DecisionBlock, [][]byte, error) {
	body, _ := r.Receipt()
	var blocks []*protocol.DecisionBlock
	var bytes [][]byte
	for _, l := range body.Decisions {
		blk, err := s.cfg.Trust.DecisionBlock(l.Cid)
		if errors.Is(err, protocol.ErrNotHeld) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("decision block %s: %w", l, err)
		}
		blocks = append(blocks, blk)
		if raw {
			b, err := s.cfg.Store.GetBlock(l.Cid)
			if err != nil {
				return nil, nil, err
			}
			bytes = append(bytes, b)
		}
	}
	return blocks, bytes, nil
}

// enqueue puts an entry for every target node of r, whose audience is
// aud, that has none yet, durably, and wakes their workers.
func (s *Service) enqueue(r *protocol.Record, aud protocol.Audience) error {
	s.enqueues.Lock()
	defer s.enqueues.Unlock()
	return s.admit(s.entriesFor(r, aud))
}

// entriesFor are the entries r, whose audience is aud, lacks (under
// enqueues).
func (s *Service) entriesFor(r *protocol.Record, aud protocol.Audience) []store.OutboxEntry {
	now := s.cfg.Now().UnixMilli()
	var es []store.OutboxEntry
	for _, j := range aud.Jurisdictions {
		for _, ai := range s.cfg.Directory.NodesOf(j) {
			if ai.ID != s.self && !s.has(r.CID(), ai.ID) {
				es = append(es, store.OutboxEntry{Record: r.CID(), Peer: ai.ID, Jurisdiction: j, Added: now})
			}
		}
	}
	return es
}

// admit keeps es durably, in one write, then in memory, and wakes their
// workers (under enqueues).
func (s *Service) admit(es []store.OutboxEntry) error {
	if err := s.cfg.Store.PutOutboxes(es); err != nil {
		return err
	}
	for _, e := range es {
		s.mu.Lock()
		s.keep(e)
		s.startWorkerLocked(e.Peer)
		s.mu.Unlock()
		s.wake(e.Peer)
	}
	return nil
}

// receiptLoop makes the entries of the node's new receipts, those waiting
// together in one write.
func (s *Service) receiptLoop(ctx context.Context) {
	for {
		var batch []*protocol.Record
		select {
		case r := <-s.receipts:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < cap(s.receipts) {
			select {
			case r := <-s.receipts:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.enqueues.Lock()
		var es []store.OutboxEntry
		for _, r := range batch {
			aud, err := s.audience(r)
			if err != nil {
				s.log.Error("direct delivery: reading a receipt's decisions failed", "cid", r.CID().String(), "err", err)
				continue
			}
			es = append(es, s.entriesFor(r, aud)...)
		}
		if err := s.admit(es); err != nil {
			s.log.Error("direct delivery: keeping the outbox entries of receipts failed; the next start makes them", "receipts", len(batch), "err", err)
		}
		s.enqueues.Unlock()
	}
}

func (s *Service) has(c cid.Cid, p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.entries[c][p]
	return ok
}

// keep records e in memory (under mu, or before the service runs).
func (s *Service) keep(e store.OutboxEntry) {
	byPeer := s.entries[e.Record]
	if byPeer == nil {
		byPeer = map[peer.ID]store.OutboxEntry{}
		s.entries[e.Record] = byPeer
	}
	byPeer[e.Peer] = e
}
