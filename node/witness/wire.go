package witness

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// handleCheckpoint answers a checkpoint request with the latest
// checkpoint and a consistency proof from the asked size.
func (w *Service) handleCheckpoint(s network.Stream) {
	release, ok := w.checkpointLimit.AdmitStream(w.g.Context(), s, w.log)
	if !ok {
		return
	}
	defer release()
	if err := w.answerCheckpoint(s); err != nil {
		s.Reset()
		w.log.Debug("checkpoint request refused", "peer", service.ShortID(s.Conn().RemotePeer()), "err", err)
		return
	}
	s.Close()
}

func (w *Service) answerCheckpoint(s network.Stream) error {
	release, err := service.ServeStream(s, serviceName, 0, timeout)
	if err != nil {
		return err
	}
	defer release()
	req, err := service.ReadMessage(s, protocol.MaxCheckpointRequest)
	if err != nil {
		return err
	}
	from, err := protocol.DecodeCheckpointRequest(req)
	if err != nil {
		return err
	}
	var msg []byte
	var proof tlog.TreeProof
	sc, err := w.cfg.Checkpoints.Latest()
	switch {
	case errors.Is(err, service.ErrEmptyLog), errors.Is(err, service.ErrSigningHeld):
		// Nothing signed yet: answered as an empty log.
	case err != nil:
		return err
	default:
		msg = sc.Note
		if from > 0 && from < sc.Size {
			if proof, err = w.cfg.Store.ConsistencyProof(from, sc.Size); err != nil {
				return err
			}
		}
	}
	answer, err := protocol.EncodeCheckpointAnswer(msg, proof)
	if err != nil {
		return err
	}
	_, err = s.Write(answer)
	return err
}

// SendCosignature sends msg, a checkpoint note of peer p carrying this
// node's cosignature, back to p. It returns an error wrapping
// service.ErrStaleCosignature when p has a newer checkpoint,
// protocol.ErrBadCosignature when p refused it.
func (w *Service) SendCosignature(ctx context.Context, p peer.ID, msg []byte) error {
	req, err := protocol.EncodeCosignRequest(msg)
	if err != nil {
		return fmt.Errorf("cosignature for %s: %w", service.ShortID(p), err)
	}
	b, err := service.Exchange(ctx, w.cfg.Host, p, protocol.CosignProtocolID, serviceName, req, 1, timeout)
	if err != nil {
		return fmt.Errorf("cosignature for %s: %w", service.ShortID(p), err)
	}
	ans, err := protocol.DecodeCosignAnswer(b)
	switch {
	case err != nil:
		return fmt.Errorf("cosignature for %s: %w", service.ShortID(p), err)
	case ans == protocol.CosignStale:
		return fmt.Errorf("cosignature for %s: %w", service.ShortID(p), service.ErrStaleCosignature)
	case ans == protocol.CosignRefused:
		return fmt.Errorf("cosignature for %s: %w: refused", service.ShortID(p), protocol.ErrBadCosignature)
	}
	return nil
}

// handleCosign answers a cosign request: the cosignature of a member of
// the federation is verified and kept (checkpoint.AddCosignature).
func (w *Service) handleCosign(s network.Stream) {
	from := s.Conn().RemotePeer()
	release, ok := w.cosignLimit.AdmitStream(w.g.Context(), s, w.log)
	if !ok {
		return
	}
	defer release()
	ans, err := w.cosign(s, from)
	if err == nil {
		if _, err = s.Write([]byte{byte(ans)}); err == nil {
			s.Close()
			return
		}
	}
	w.log.Debug("cosign request refused", "peer", service.ShortID(from), "err", err)
	s.Reset()
}

func (w *Service) cosign(s network.Stream, from peer.ID) (protocol.CosignAnswer, error) {
	release, err := service.ServeStream(s, serviceName, 0, timeout)
	if err != nil {
		return 0, err
	}
	defer release()
	req, err := service.ReadMessage(s, protocol.MaxCosignRequest)
	if err != nil {
		return 0, err
	}
	msg, err := protocol.DecodeCosignRequest(req)
	if err != nil {
		return 0, err
	}
	if !w.cfg.IsMember(from) {
		w.log.Debug("refused a cosignature of a non-member", "peer", service.ShortID(from))
		return protocol.CosignRefused, nil
	}
	switch err := w.cfg.Checkpoints.AddCosignature(from, msg); {
	case err == nil:
		return protocol.CosignKept, nil
	case errors.Is(err, service.ErrStaleCosignature):
		return protocol.CosignStale, nil
	default:
		w.log.Debug("refused a cosignature", "peer", service.ShortID(from), "err", err)
		return protocol.CosignRefused, nil
	}
}

// HeldBy asks peer p for the latest checkpoint of the log of node id that
// p verified and cosigned (protocol.WitnessedProtocolID): the note p
// keeps, with its cosignature, or nil when p verified none. The caller
// checks the note's signatures.
func (w *Service) HeldBy(ctx context.Context, p, id peer.ID) ([]byte, error) {
	req, err := protocol.EncodeWitnessedRequest(id)
	if err != nil {
		return nil, err
	}
	b, err := service.Exchange(ctx, w.cfg.Host, p, protocol.WitnessedProtocolID, serviceName, req, protocol.MaxWitnessedAnswer, timeout)
	if err != nil {
		return nil, fmt.Errorf("what %s holds of %s: %w", service.ShortID(p), service.ShortID(id), err)
	}
	msg, err := protocol.DecodeWitnessedAnswer(b)
	if err != nil {
		return nil, fmt.Errorf("what %s holds of %s: %w", service.ShortID(p), service.ShortID(id), err)
	}
	return msg, nil
}

// handleWitnessed answers a witnessed request with the kept note of the
// log asked about (Note).
func (w *Service) handleWitnessed(s network.Stream) {
	release, ok := w.witnessedLimit.AdmitStream(w.g.Context(), s, w.log)
	if !ok {
		return
	}
	defer release()
	if err := w.answerWitnessed(s); err != nil {
		s.Reset()
		w.log.Debug("witnessed request refused", "peer", service.ShortID(s.Conn().RemotePeer()), "err", err)
		return
	}
	s.Close()
}

func (w *Service) answerWitnessed(s network.Stream) error {
	release, err := service.ServeStream(s, serviceName, 0, timeout)
	if err != nil {
		return err
	}
	defer release()
	req, err := service.ReadMessage(s, protocol.MaxWitnessedRequest)
	if err != nil {
		return err
	}
	id, err := protocol.DecodeWitnessedRequest(req)
	if err != nil {
		return err
	}
	msg, _ := w.Note(id)
	answer, err := protocol.EncodeWitnessedAnswer(msg)
	if err != nil {
		return err
	}
	_, err = s.Write(answer)
	return err
}
