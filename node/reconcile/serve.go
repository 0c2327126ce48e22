package reconcile

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/negentropy"
)

// handleSync answers a peer's session: one frame back per frame in.
func (s *Service) handleSync(st network.Stream) {
	release, ok := s.syncLimit.AdmitStream(s.g.Context(), st, s.log)
	if !ok {
		return
	}
	defer release()
	if err := s.serveSync(st); err != nil {
		st.Reset()
		if !errors.Is(err, io.EOF) {
			s.log.Debug("sync session refused", "peer", st.Conn().RemotePeer().String(), "err", err)
		}
		return
	}
	st.Close()
}

func (s *Service) serveSync(st network.Stream) error {
	release, err := service.ServeStream(st, serviceName, sessionMemory, sessionTime)
	if err != nil {
		return err
	}
	defer release()
	vec, err := s.cfg.Index.vector()
	if err != nil {
		return err
	}
	neg, err := negentropy.New(vec, protocol.SyncMaxMessage)
	if err != nil {
		return err
	}
	br := bufio.NewReader(st)
	for rounds := 0; ; rounds++ {
		if rounds > protocol.SyncMaxRounds {
			return fmt.Errorf("more than %d rounds", protocol.SyncMaxRounds)
		}
		frame, err := protocol.ReadFrame(br, protocol.SyncMaxFrame)
		if errors.Is(err, io.EOF) && rounds > 0 {
			return nil // the initiator is done
		}
		if err != nil {
			return err
		}
		reply, err := neg.Reconcile(frame)
		if err != nil {
			return err
		}
		if _, err := st.Write(protocol.AppendFrame(nil, reply)); err != nil {
			return err
		}
	}
}

// handleSyncAll answers a sync-all request: the peer, which holds
// nothing, asks for the whole sync set. The answer is one frame per
// record, in (issued_at, CID) order, then the end of the stream.
func (s *Service) handleSyncAll(st network.Stream) {
	release, ok := s.allLimit.AdmitStream(s.g.Context(), st, s.log)
	if !ok {
		return
	}
	defer release()
	s.sendingAll.Inc()
	defer s.sendingAll.Dec()
	if err := s.sendAll(st); err != nil {
		st.Reset()
		s.log.Debug("sync-all refused", "peer", st.Conn().RemotePeer().String(), "err", err)
		return
	}
	st.Close()
}

func (s *Service) sendAll(st network.Stream) error {
	release, err := service.ServeStream(st, serviceName, 0, sessionTime)
	if err != nil {
		return err
	}
	defer release()
	// The request is the stream itself: the asker writes nothing.
	if b, err := service.ReadMessage(st, 0); err != nil || len(b) > 0 {
		return errors.New("a sync-all request with a body")
	}
	w := bufio.NewWriterSize(st, 64<<10)
	var frame []byte
	err = s.cfg.Store.SyncItems(func(_ int64, c cid.Cid) error {
		b, err := s.cfg.Store.GetBytes(c)
		if err != nil {
			return err
		}
		frame = protocol.AppendFrame(frame[:0], b)
		_, err = w.Write(frame)
		return err
	})
	if err != nil {
		return err
	}
	return w.Flush()
}
