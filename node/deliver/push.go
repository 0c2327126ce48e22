package deliver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// The workers that push each target node's pending records, and the
// acknowledgements they check (package doc, "Sender").

// startWorkerLocked starts the worker of target node p unless it runs
// (under mu).
func (s *Service) startWorkerLocked(p peer.ID) {
	if s.closed || s.workers[p] != nil {
		return
	}
	wake := make(chan struct{}, 1)
	s.workers[p] = wake
	s.g.Go(func(ctx context.Context) { s.work(ctx, p, wake) })
}

// wake makes p's worker try again now, if it runs.
func (s *Service) wake(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.workers[p]; w != nil {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// pendingFor lists p's pending entries, oldest first; with none left it
// retires p's worker (under the same lock, so that an enqueue either
// sees the worker gone and starts another, or is seen here).
func (s *Service) pendingFor(p peer.ID) (pending []store.OutboxEntry, retire bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, byPeer := range s.entries {
		if e, ok := byPeer[p]; ok && !e.Acked() {
			pending = append(pending, e)
		}
	}
	if len(pending) == 0 {
		delete(s.workers, p)
		return nil, true
	}
	slices.SortFunc(pending, func(a, b store.OutboxEntry) int {
		if c := cmp.Compare(a.Added, b.Added); c != 0 {
			return c
		}
		return strings.Compare(a.Record.KeyString(), b.Record.KeyString())
	})
	return pending, false
}

// work pushes p's pending records until there are none, backing off
// after each failure.
func (s *Service) work(ctx context.Context, p peer.ID, wake chan struct{}) {
	var backoff time.Duration
	for ctx.Err() == nil {
		pending, retire := s.pendingFor(p)
		if retire {
			return
		}
		failed := false
		for _, e := range pending {
			if err := s.push(ctx, e); err != nil {
				if ctx.Err() == nil {
					s.log.Debug("direct delivery failed; trying again later", "peer", service.ShortID(p), "cid", e.Record.String(), "err", err)
				}
				failed = true
				break
			}
		}
		if !failed {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, s.cfg.MinBackoff), s.cfg.MaxBackoff)
		wait := backoff/2 + rand.N(backoff/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-wake: // a new entry, or the node connected
		}
		t.Stop()
	}
}

// push delivers e's record to e's node once, and keeps the outcome: the
// attempt counted, and the acknowledgement if there is one.
func (s *Service) push(ctx context.Context, e store.OutboxEntry) error {
	ack, result, err := s.exchange(ctx, e)
	if ctx.Err() != nil {
		return ctx.Err() // closing: this attempt does not count
	}
	if errors.Is(err, errNotFor) {
		// No longer a node of the audience (its accreditation lapsed or
		// was revoked): it is no target any more.
		s.attempts.WithLabelValues(result).Inc()
		return s.drop(e)
	}
	s.attempts.WithLabelValues(result).Inc()
	e.Attempts++
	if ack != nil {
		e.AckedAt, e.Ack = ack.At, ack.Sig
	}
	if perr := s.cfg.Store.PutOutbox(e); perr != nil {
		return errors.Join(err, fmt.Errorf("deliver: keeping the outcome: %w", perr))
	}
	s.mu.Lock()
	s.keep(e)
	s.mu.Unlock()
	if ack != nil {
		s.log.Info("record delivered", "cid", e.Record.String(), "peer", service.ShortID(e.Peer), "jurisdiction", ack.Jurisdiction)
	}
	return err
}

// drop removes e from the outbox, durably.
func (s *Service) drop(e store.OutboxEntry) error {
	if err := s.cfg.Store.DeleteOutbox(e.Record, e.Peer); err != nil {
		return fmt.Errorf("deliver: dropping the entry of a node that left the audience: %w", err)
	}
	s.mu.Lock()
	delete(s.entries[e.Record], e.Peer)
	if len(s.entries[e.Record]) == 0 {
		delete(s.entries, e.Record)
	}
	s.mu.Unlock()
	s.log.Info("dropping the delivery to a node no longer of the record's audience", "cid", e.Record.String(), "peer", service.ShortID(e.Peer))
	return nil
}

// exchange pushes e's record and returns the verified acknowledgement,
// or the error; result names the outcome for the metrics.
func (s *Service) exchange(ctx context.Context, e store.OutboxEntry) (*protocol.DeliveryAck, string, error) {
	r, err := s.cfg.Store.Get(e.Record)
	if err != nil {
		return nil, "failed", fmt.Errorf("deliver: reading the record: %w", err)
	}
	var blocks [][]byte
	ok, err := protocol.MayReceive(s.cfg.Trust, r, e.Peer, s.cfg.Now().UnixMilli())
	if r.Kind() == protocol.KindReceipt {
		// A receipt goes to the nodes of its decisions' jurisdictions,
		// each with the blocks that concern its own.
		_, ok, err = protocol.HasRole(s.cfg.Trust, e.Peer, e.Jurisdiction, protocol.RoleNode, s.cfg.Now().UnixMilli())
		decoded, raw, berr := s.blocksOf(r, true)
		for i, blk := range decoded {
			if blk.Concerns(e.Jurisdiction) {
				blocks = append(blocks, raw[i])
			}
		}
		err, ok = errors.Join(err, berr), ok && len(blocks) > 0
	}
	switch {
	case err != nil:
		return nil, "failed", fmt.Errorf("deliver: %w", err)
	case !ok:
		return nil, "withheld", errNotFor
	}
	req, err := protocol.EncodeDeliverRequest(r.Bytes(), blocks...)
	if err != nil {
		// A receipt whose blocks for this jurisdiction are over what one
		// push carries: trying again would not help. Its nodes can fetch
		// it by CID.
		s.log.Error("direct delivery: a receipt too large to push; its decisions' nodes must fetch it", "cid", r.CID().String(), "jurisdiction", e.Jurisdiction, "err", err)
		return nil, "too_large", errNotFor
	}
	if s.cfg.Host.Network().Connectedness(e.Peer) != network.Connected {
		for _, ai := range s.cfg.Directory.NodesOf(e.Jurisdiction) {
			if ai.ID == e.Peer && len(ai.Addrs) > 0 {
				s.cfg.Host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
		}
	}
	answer, err := service.Exchange(ctx, s.cfg.Host, e.Peer, protocol.DeliverProtocolID, serviceName, req, protocol.DeliverMaxAnswer, s.cfg.Timeout)
	if err != nil {
		return nil, "failed", err
	}
	ack, err := protocol.DecodeDeliverAnswer(e.Record, answer)
	switch {
	case err != nil:
		return nil, "bad_ack", err
	case ack == nil:
		return nil, "refused", errRefused
	}
	if err := s.checkAck(r, e.Peer, ack); err != nil {
		return nil, "bad_ack", err
	}
	return ack, "acked", nil
}

// checkAck accepts an acknowledgement by node p of r only if p signed it
// and p is, now, a node of the jurisdiction it names, which is one of r's
// audience.
func (s *Service) checkAck(r *protocol.Record, p peer.ID, ack *protocol.DeliveryAck) error {
	if err := ack.Verify(p); err != nil {
		return err
	}
	aud, err := s.audience(r)
	if err != nil {
		return err
	}
	if !slices.Contains(aud.Jurisdictions, ack.Jurisdiction) {
		return errAckScope
	}
	_, ok, err := protocol.HasRole(s.cfg.Trust, p, ack.Jurisdiction, protocol.RoleNode, s.cfg.Now().UnixMilli())
	if err != nil || !ok {
		return errors.Join(errAckScope, err)
	}
	return nil
}
