package service

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
)

// Stream is an outgoing libp2p stream bound to the context it was opened
// with: attached to its service's resource scope, with its memory
// reserved, its deadline the context's, and reset if the context ends
// first. End it with Finish.
type Stream struct {
	network.Stream
	stop   func() bool
	memory int
}

// OpenStream opens a stream of proto to p for the service named svc (a
// resource manager service name), reserving memory bytes for it. ctx
// bounds the whole exchange.
func OpenStream(ctx context.Context, h host.Host, p peer.ID, proto libp2pprotocol.ID, svc string, memory int) (*Stream, error) {
	s, err := h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, err
	}
	st := &Stream{Stream: s, stop: context.AfterFunc(ctx, func() { s.Reset() })}
	if err := s.Scope().SetService(svc); err != nil {
		return nil, st.Finish(err)
	}
	if memory > 0 {
		if err := s.Scope().ReserveMemory(memory, network.ReservationPriorityAlways); err != nil {
			return nil, st.Finish(err)
		}
		st.memory = memory
	}
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	return st, nil
}

// Finish ends the stream: reset if err is not nil (and err returned),
// closed otherwise (and Close's error returned).
func (s *Stream) Finish(err error) error {
	s.stop()
	if s.memory > 0 {
		s.Scope().ReleaseMemory(s.memory)
		s.memory = 0
	}
	if err != nil {
		s.Reset()
		return err
	}
	return s.Close()
}

// Exchange opens a stream, writes req, closes its side and reads the
// answer until the peer closes, at most limit bytes, within timeout.
func Exchange(ctx context.Context, h host.Host, p peer.ID, proto libp2pprotocol.ID, svc string, req []byte, limit int, timeout time.Duration) (answer []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := OpenStream(ctx, h, p, proto, svc, 0)
	if err != nil {
		return nil, err
	}
	defer func() { err = s.Finish(err) }()
	if _, err := s.Write(req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	return ReadMessage(s, limit)
}

// ServeStream prepares an incoming stream of service svc: attached to the
// service's scope, memory bytes reserved, a deadline timeout from now. It
// returns the function that releases the memory.
func ServeStream(s network.Stream, svc string, memory int, timeout time.Duration) (release func(), err error) {
	if err := s.Scope().SetService(svc); err != nil {
		return nil, err
	}
	release = func() {}
	if memory > 0 {
		if err := s.Scope().ReserveMemory(memory, network.ReservationPriorityAlways); err != nil {
			return nil, err
		}
		release = func() { s.Scope().ReleaseMemory(memory) }
	}
	_ = s.SetDeadline(time.Now().Add(timeout))
	return release, nil
}
