package deliver

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// serverMemory is what a served push reserves: the request and the
// decoded record.
const serverMemory = 2 * protocol.DeliverMaxRequest

// handle serves one push: Close once the answer is written, Reset on any
// error.
func (s *Service) handle(st network.Stream) {
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
	raw, err := protocol.DecodeDeliverRequest(msg)
	if err != nil {
		return "", err
	}
	r, err := protocol.Decode(raw)
	if err != nil {
		return "", fmt.Errorf("deliver: %w", err)
	}
	ctx, cancel := context.WithTimeout(s.g.Context(), s.cfg.Timeout)
	defer cancel()
	ack, err := s.accept(ctx, r)
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

// accept ingests r if this node may receive it, and returns its
// acknowledgement once r is durable; nil and the reason otherwise.
func (s *Service) accept(ctx context.Context, r *protocol.Record) (*protocol.DeliveryAck, error) {
	now := s.cfg.Now()
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
	ack, err := protocol.SignDeliveryAck(s.cfg.Key, r.CID(), s.cfg.Jurisdiction, s.cfg.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	return &ack, nil
}
