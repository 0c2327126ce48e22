package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// ErrThrottled is wrapped by the error for a peer's stream refused because
// the peer is over its limit for that protocol (PeerLimiter.Admit).
var ErrThrottled = errors.New("node: peer over its limit")

// PeerLimit bounds what one peer may ask of one protocol this node
// serves: streams at once, and a token bucket of streams (Rate a second
// sustained, Burst at once). A stream over the rate waits up to MaxWait
// for its token, so that a burst from an honest peer (a node catching up)
// is slowed rather than refused; past MaxWait it is refused.
type PeerLimit struct {
	// Concurrent bounds the streams of the protocol one peer has open at
	// once; 0 means no bound.
	Concurrent int
	// Rate is the streams a second one peer may open, sustained; 0 means
	// no rate limit.
	Rate rate.Limit
	// Burst is how many streams above Rate one peer may open at once
	// (at least 1 when Rate is set).
	Burst int
	// MaxWait is the longest a stream over the rate waits for its token.
	MaxWait time.Duration
}

// PeerLimiter enforces a PeerLimit per peer for one protocol. Every
// refusal is counted in entente_p2p_streams_throttled_total{protocol,
// reason} (reason "concurrency" or "rate"), one metric shared by every
// service's limiters.
type PeerLimiter struct {
	proto   string
	limit   PeerLimit
	refused *prometheus.CounterVec

	mu    sync.Mutex
	peers map[peer.ID]*peerUse
	calls int
}

// peerUse is one peer's use of a protocol.
type peerUse struct {
	bucket *rate.Limiter
	active int
}

// sweepEvery is how many admissions pass between sweeps of the peers
// whose state says nothing any more (no stream open, a full bucket).
const sweepEvery = 1024

// NewPeerLimiter makes the limiter of proto and registers the shared
// metric with reg (nil registers none).
func NewPeerLimiter(proto libp2pprotocol.ID, l PeerLimit, reg prometheus.Registerer) (*PeerLimiter, error) {
	if l.Concurrent < 0 || l.Rate < 0 || l.Burst < 0 || l.MaxWait < 0 {
		return nil, fmt.Errorf("limits of %s: negative values (%+v)", proto, l)
	}
	if l.Rate > 0 && l.Burst == 0 {
		l.Burst = 1
	}
	c, err := throttledCounter(reg)
	if err != nil {
		return nil, err
	}
	return &PeerLimiter{proto: string(proto), limit: l, refused: c, peers: map[peer.ID]*peerUse{}}, nil
}

// throttledCounter is the metric every limiter counts its refusals in,
// registered once with reg.
func throttledCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "entente_p2p_streams_throttled_total",
		Help: "Streams from peers refused because the peer was over its limit for the protocol, by protocol and reason (concurrency, rate).",
	}, []string{"protocol", "reason"})
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &already):
		if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("metrics: %w", err)
}

// Admit admits one stream of p, waiting for a token up to MaxWait (or
// until ctx ends). It returns the function that ends the stream's use
// (call it once, when the stream is done), or an error wrapping
// ErrThrottled, counted, when p is over its limit.
func (l *PeerLimiter) Admit(ctx context.Context, p peer.ID) (release func(), err error) {
	l.mu.Lock()
	if l.calls++; l.calls%sweepEvery == 0 {
		l.sweep()
	}
	u := l.peers[p]
	if u == nil {
		u = &peerUse{}
		if l.limit.Rate > 0 {
			u.bucket = rate.NewLimiter(l.limit.Rate, l.limit.Burst)
		}
		l.peers[p] = u
	}
	if l.limit.Concurrent > 0 && u.active >= l.limit.Concurrent {
		l.mu.Unlock()
		return nil, l.refuse("concurrency", fmt.Errorf("%w: %d %s streams open", ErrThrottled, l.limit.Concurrent, l.proto))
	}
	var wait time.Duration
	if u.bucket != nil {
		r := u.bucket.Reserve()
		if wait = r.Delay(); wait > l.limit.MaxWait {
			r.Cancel()
			l.mu.Unlock()
			return nil, l.refuse("rate", fmt.Errorf("%w: over %g %s streams a second", ErrThrottled, float64(l.limit.Rate), l.proto))
		}
	}
	u.active++
	l.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			l.mu.Lock()
			u.active--
			l.mu.Unlock()
		})
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			release()
			return nil, ctx.Err()
		}
	}
	return release, nil
}

// AdmitStream is Admit for the peer at the other end of s, an incoming
// stream: a stream over the limit is reset and logged at Debug, and
// AdmitStream returns ok false.
func (l *PeerLimiter) AdmitStream(ctx context.Context, s network.Stream, log *slog.Logger) (release func(), ok bool) {
	release, err := l.Admit(ctx, s.Conn().RemotePeer())
	if err != nil {
		s.Reset()
		log.Debug("stream refused", "protocol", l.proto, "peer", s.Conn().RemotePeer().String(), "err", err)
		return nil, false
	}
	return release, true
}

func (l *PeerLimiter) refuse(reason string, err error) error {
	l.refused.WithLabelValues(l.proto, reason).Inc()
	return err
}

// sweep forgets the peers with no stream open and a full bucket: their
// state is that of a peer never seen. l.mu is held.
func (l *PeerLimiter) sweep() {
	now := time.Now()
	for p, u := range l.peers {
		if u.active == 0 && (u.bucket == nil || u.bucket.TokensAt(now) >= float64(l.limit.Burst)) {
			delete(l.peers, p)
		}
	}
}
