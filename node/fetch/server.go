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
	release, ok := f.limit.AdmitStream(f.g.Context(), s, f.log)
	if !ok {
		f.served.WithLabelValues("throttled").Inc()
		return
	}
	defer release()
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
		b, err := f.servable(c, remote)
		if err != nil {
			return err
		}
		buf = protocol.AppendFetchAnswer(buf[:0], b)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// servable returns the bytes of the held record or decision block c if
// remote may have it (protocol.MayReceive, protocol.MayReceiveBlock),
// nil if the answer is "not held".
func (f *Service) servable(c cid.Cid, remote peer.ID) ([]byte, error) {
	at := f.cfg.Now().UnixMilli()
	rec, err := f.cfg.Store.Get(c)
	if errors.Is(err, store.ErrNotFound) {
		return f.servableBlock(c, remote, at)
	}
	if err != nil {
		return nil, err
	}
	ok, err := protocol.MayReceive(f.cfg.Trust, rec, remote, at)
	return f.answer(rec.Bytes(), "record", ok, err)
}

// servableBlock is servable for what is not a record: a decision block,
// or nothing.
func (f *Service) servableBlock(c cid.Cid, remote peer.ID, at int64) ([]byte, error) {
	b, err := f.cfg.Store.GetBlock(c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		f.servedRecords.WithLabelValues("not_held").Inc()
		return nil, nil
	case err != nil:
		return nil, err
	}
	ok, err := protocol.MayReceiveBlock(f.cfg.Trust, remote, at)
	return f.answer(b, "block", ok, err)
}

// answer counts and returns b (under status) if the asker may have it,
// nil (withheld) if not.
func (f *Service) answer(b []byte, status string, ok bool, err error) ([]byte, error) {
	switch {
	case err != nil:
		return nil, err
	case !ok:
		f.servedRecords.WithLabelValues("withheld").Inc()
		return nil, nil
	}
	f.servedRecords.WithLabelValues(status).Inc()
	return b, nil
}
