package deliver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// serverMemory is what a served push reserves: the request and the
// decoded record.
const serverMemory = 2 * protocol.DeliverMaxRequest

// servePeerLimit bounds one peer's pushes. A sender pushes a target node
// its pending records one stream after the other, each answered once the
// record is durable here (a synced write: about a millisecond, so under
// a thousand a second); a burst of receipts (a verify-batch of 1 000 is
// one receipt, but single verifies make one each) is slowed by up to 2 s
// a push, and the sender's backoff retries what is refused.
var servePeerLimit = service.PeerLimit{Concurrent: 8, Rate: 1000, Burst: 2000, MaxWait: 2 * time.Second}

// handle serves one push: Close once the answer is written, Reset on any
// error.
func (s *Service) handle(st network.Stream) {
	release, ok := s.limit.AdmitStream(s.g.Context(), st, s.log)
	if !ok {
		s.served.WithLabelValues("throttled").Inc()
		return
	}
	defer release()
	result, err := s.serve(st)
	if err != nil {
		s.served.WithLabelValues("reset").Inc()
		st.Reset()
		s.log.Debug("deliver stream reset", "peer", st.Conn().RemotePeer().String(), "err", err)
		return
	}
	s.served.WithLabelValues(result).Inc()
	st.Close()
}

// serve reads a push, ingests the record if this node may receive it,
// and writes the answer; it returns the answer's name.
func (s *Service) serve(st network.Stream) (string, error) {
	remote := st.Conn().RemotePeer()
	if !s.cfg.IsMember(remote) {
		return "", fmt.Errorf("deliver: %s is not a member", remote)
	}
	release, err := service.ServeStream(st, serviceName, serverMemory, s.cfg.Timeout)
	if err != nil {
		return "", err
	}
	defer release()
	msg, err := service.ReadMessage(st, protocol.DeliverMaxRequest)
	if err != nil {
		return "", fmt.Errorf("deliver: reading the request: %w", err)
	}
	raw, blocks, err := protocol.DecodeDeliverRequest(msg)
	if err != nil {
		return "", err
	}
	r, err := protocol.Decode(raw)
	if err != nil {
		return "", fmt.Errorf("deliver: %w", err)
	}
	ctx, cancel := context.WithTimeout(s.g.Context(), s.cfg.Timeout)
	defer cancel()
	ack, err := s.accept(ctx, r, blocks)
	if err != nil {
		s.log.Debug("deliver: refusing a pushed record", "peer", service.ShortID(remote), "cid", r.CID().String(), "err", err)
	}
	answer, err := protocol.EncodeDeliverAnswer(ack)
	if err != nil {
		return "", err
	}
	if _, err := st.Write(answer); err != nil {
		return "", err
	}
	if ack == nil {
		return "refused", nil
	}
	return "acked", nil
}

// accept ingests r (with blocks, the decision blocks of a receipt) if
// this node may receive it, and returns its acknowledgement once r is
// durable; nil and the reason otherwise.
func (s *Service) accept(ctx context.Context, r *protocol.Record, blocks [][]byte) (*protocol.DeliveryAck, error) {
	now := s.cfg.Now()
	if r.Kind() == protocol.KindReceipt {
		return s.acceptReceipt(ctx, r, blocks)
	}
	if len(blocks) > 0 {
		return nil, errors.New("deliver: decision blocks with a record that is no receipt")
	}
	if !protocol.AudienceOf(r).Delivered() {
		return nil, errors.New("deliver: the record is not delivered directly (it travels by gossip)")
	}
	ok, err := protocol.MayReceive(s.cfg.Trust, r, s.self, now.UnixMilli())
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errors.New("deliver: this node is not of the record's audience")
	}
	if _, err := s.cfg.Ingest.Ingest(ctx, r, service.SourceDeliver); err != nil {
		return nil, err
	}
	return s.ack(r)
}

// acceptReceipt keeps another node's receipt r and those of its decision
// blocks that concern this node's jurisdiction (each must), then
// acknowledges it.
func (s *Service) acceptReceipt(ctx context.Context, r *protocol.Record, blocks [][]byte) (*protocol.DeliveryAck, error) {
	if len(blocks) == 0 {
		return nil, errors.New("deliver: a receipt without the decision blocks for this jurisdiction")
	}
	body, _ := r.Receipt()
	for i, b := range blocks {
		c := protocol.RecordCID(b)
		if !slices.ContainsFunc(body.Decisions, func(l protocol.Link) bool { return l.Equals(c) }) {
			return nil, fmt.Errorf("deliver: block %d is no decision of the receipt", i)
		}
		blk, err := protocol.DecodeDecisionBlock(b)
		if err != nil {
			return nil, fmt.Errorf("deliver: block %d: %w", i, err)
		}
		if !blk.Concerns(s.cfg.Jurisdiction) {
			return nil, fmt.Errorf("deliver: decision %s is from %s to %s, not this node's jurisdiction %s", c, blk.Request.From, blk.Request.To, s.cfg.Jurisdiction)
		}
	}
	if _, err := s.cfg.Ingest.Ingest(ctx, r, service.SourceDeliver); err != nil {
		return nil, err
	}
	if err := s.cfg.Store.PutBlocks(ctx, r.CID(), blocks); err != nil {
		return nil, err
	}
	return s.ack(r)
}

// ack is this node's acknowledgement of r, which it holds durably.
func (s *Service) ack(r *protocol.Record) (*protocol.DeliveryAck, error) {
	ack, err := protocol.SignDeliveryAck(s.cfg.Key, r.CID(), s.cfg.Jurisdiction, s.cfg.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	return &ack, nil
}
