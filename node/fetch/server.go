package fetch

import (
	"bufio"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// handleFetch serves one fetch stream: Close when every answer is
// written, Reset on any error.
func (f *Service) handle(s network.Stream) {
	// Counted before the peer can see the outcome, so that whoever has
	// seen it finds it counted.
	if err := f.serve(s); err != nil {
		f.served.WithLabelValues("reset").Inc()
		s.Reset()
		f.log.Debug("fetch stream reset", "peer", s.Conn().RemotePeer().String(), "err", err)
		return
	}
	f.served.WithLabelValues("ok").Inc()
	s.Close()
}

func (f *Service) serve(s network.Stream) error {
	if f.g.Closed() {
		return errFetchClosing
	}
	if err := s.Scope().SetService(fetchServiceName); err != nil {
		return fmt.Errorf("attaching the stream to the fetch service: %w", err)
	}
	if err := s.Scope().ReserveMemory(fetchServerMemory, network.ReservationPriorityAlways); err != nil {
		return fmt.Errorf("reserving memory: %w", err)
	}
	defer s.Scope().ReleaseMemory(fetchServerMemory)
	if err := s.SetDeadline(time.Now().Add(fetchStreamTimeout)); err != nil {
		return err
	}
	frame, err := protocol.ReadFrame(bufio.NewReaderSize(s, 64), protocol.FetchMaxRequest)
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	cids, err := protocol.DecodeFetchRequest(frame)
	if err != nil {
		return err
	}
	remote := s.Conn().RemotePeer()
	w := bufio.NewWriterSize(s, fetchWriteBuffer)
	var buf []byte
	for _, c := range cids {
		rec, err := f.servable(c, remote)
		if err != nil {
			return err
		}
		var b []byte
		if rec != nil {
			b = rec.Bytes()
		}
		buf = protocol.AppendFetchAnswer(buf[:0], b)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// servable returns the held record c if remote may have it
// (protocol.MayReceive), nil if the answer is "not held".
func (f *Service) servable(c cid.Cid, remote peer.ID) (*protocol.Record, error) {
	rec, err := f.cfg.Store.Get(c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		f.servedRecords.WithLabelValues("not_held").Inc()
		return nil, nil
	case err != nil:
		return nil, err
	}
	ok, err := protocol.MayReceive(f.cfg.Trust, rec, remote, f.cfg.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	if !ok {
		f.servedRecords.WithLabelValues("withheld").Inc()
		return nil, nil
	}
	f.servedRecords.WithLabelValues("record").Inc()
	return rec, nil
}
