// Package service holds what every service of a node shares, and nothing
// else: the ownership of goroutines and stream handlers (Group), the
// errors a service answers when it is closed or saturated, and the few
// data types that cross between services (where a record came from, what
// ingesting it gave). Services import it and never each other.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/protocol"
)

// ErrPushback is returned when a service is too busy to take more work
// now; the HTTP API maps it to 503 overloaded with Retry-After.
var ErrPushback = errors.New("node: overloaded, retry later")

// ErrClosed is returned by a service that is closing or closed.
var ErrClosed = errors.New("node: closed")

// ErrEmptyLog is returned when a checkpoint is asked of a node whose log
// has no records: there is nothing to sign.
var ErrEmptyLog = errors.New("node: the log is empty")

// ErrSigningHeld is returned for a checkpoint the node may not sign yet:
// it was restored from a backup and does not know yet that its log
// extends every checkpoint of its own that its peers hold (DESIGN.md §6,
// "Restoring a node"); the HTTP API maps it to 503 with Retry-After.
var ErrSigningHeld = errors.New("node: signing is held after a restore")

// ErrStaleCosignature is returned for a cosignature of a checkpoint that
// is not the log's latest.
var ErrStaleCosignature = errors.New("node: cosignature of a checkpoint that is not the latest")

// ErrNoBundle is wrapped by the error for a record the node holds but has
// no receipt bundle of: one that is not a receipt, or another node's
// receipt (only its issuer's log can prove it).
var ErrNoBundle = errors.New("node: no receipt bundle")

// Clock is a node's clock; every service reads time through it.
type Clock func() time.Time

// Defaults fills the fields every service's config has: a nil clock is
// time.Now, a nil logger discards. Either pointer may be nil.
func Defaults(now *Clock, logger **slog.Logger) {
	if now != nil && *now == nil {
		*now = time.Now
	}
	if logger != nil && *logger == nil {
		*logger = slog.New(slog.DiscardHandler)
	}
}

// Register registers a service's collectors with reg; a nil reg
// registers none. Errors name the service.
func Register(reg prometheus.Registerer, service string, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("%s: metrics: %w", service, err)
		}
	}
	return nil
}

// Source says where a record came from, for metrics, logs and what
// ingest does with it.
type Source string

// Record sources.
const (
	SourceAPI    Source = "api"    // the HTTP API, the CLI, a test
	SourceGossip Source = "gossip" // the gossip topic
	SourceLocal  Source = "local"  // signed by this node (receipts, its incidents)
	SourceParked Source = "parked" // a record retried once its dependencies arrived
	SourceFetch  Source = "fetch"  // asked of a peer (fetch, sync)
	// SourceDeliver: pushed by a peer by direct delivery (TLP:RED).
	SourceDeliver Source = "deliver"
	// SourceImport: the operator's import (POST /v1/records?import=true),
	// exempt from freshness and never gossiped (DESIGN.md §4).
	SourceImport Source = "import"
)

// Accepted is the outcome of a successful ingest.
type Accepted struct {
	CID    cid.Cid
	Seq    uint64
	New    bool // false when the record was already held
	Record *protocol.Record
}

// Verdict is the answer to a transfer request: the decision, its block,
// and the receipt that signs it as decision Item.
type Verdict struct {
	Decision *protocol.Decision
	Block    *protocol.DecisionBlock
	Receipt  *protocol.Record
	Item     int
	// Unsigned says why Receipt is nil: UnsignedHeld or UnsignedTime.
	Unsigned string
}

// Why a verdict is answered unsigned (Verdict.Unsigned).
const (
	// UnsignedHeld: signing is held after a restore (node/rejoin).
	UnsignedHeld = "signing_held"
	// UnsignedTime: a decision time outside the signing window.
	UnsignedTime = "outside_window"
)

// Group owns a service's goroutines and libp2p stream handlers: Go starts
// one, Close cancels the group's context and waits for all of them. Close
// is idempotent. The zero Group is not usable; make one with NewGroup.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewGroup makes a group whose context is a child of none: only Close
// ends it.
func NewGroup() *Group {
	g := &Group{}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	return g
}

// Context is cancelled when the group closes.
func (g *Group) Context() context.Context { return g.ctx }

// Closed reports whether Close was called.
func (g *Group) Closed() bool { return g.ctx.Err() != nil }

// Go runs fn on a goroutine the group waits for; fn must return once the
// group's context is done.
func (g *Group) Go(fn func(ctx context.Context)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn(g.ctx)
	}()
}

// Close cancels the group's context and waits for its goroutines and
// stream handlers. It is safe to call more than once.
func (g *Group) Close() {
	g.once.Do(g.cancel)
	g.wg.Wait()
}

// ServeStreams registers handle for proto on h and makes the group own
// the handlers: libp2p runs them on goroutines of its own, which Close
// would not otherwise wait for. Each handler runs only while the group is
// open; its stream is reset when the group closes; and Close removes the
// handler and waits for the ones running.
func (g *Group) ServeStreams(h host.Host, proto libp2pprotocol.ID, handle func(network.Stream)) {
	var (
		mu      sync.Mutex
		closing bool
		running sync.WaitGroup
	)
	h.SetStreamHandler(proto, func(s network.Stream) {
		mu.Lock()
		if closing {
			mu.Unlock()
			s.Reset()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		stop := context.AfterFunc(g.ctx, func() { s.Reset() })
		defer stop()
		handle(s)
	})
	g.Go(func(ctx context.Context) {
		<-ctx.Done()
		h.RemoveStreamHandler(proto)
		mu.Lock()
		closing = true
		mu.Unlock()
		running.Wait()
	})
}

// ShortID is the last 8 characters of a peer ID's string, for logs.
func ShortID(id interface{ String() string }) string {
	s := id.String()
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

// ReadMessage reads what a peer wrote on a stream until it closed its
// side, at most limit bytes; more is an error.
func ReadMessage(r io.Reader, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("a message over %d bytes", limit)
	}
	return b, nil
}

// Delivery is where the direct delivery (DESIGN.md §6) of one record to
// one target jurisdiction stands: "pending" until every node of the
// jurisdiction has acknowledged it, then "delivered" with the time of the
// last acknowledgement. Attempts counts the pushes made to its nodes.
type Delivery struct {
	State    string    `json:"state"`
	AckedAt  time.Time `json:"acked_at,omitzero"`
	Attempts int       `json:"attempts"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
)

// ErrUnauthorized is returned for an API request whose bearer token is
// not one the node knows.
var ErrUnauthorized = errors.New("node: unknown bearer token")

// ErrForbidden is wrapped by the error for an API request that its
// caller's role does not allow, or whose caller no longer holds the
// accreditation of its role.
var ErrForbidden = errors.New("node: forbidden")

// Identity is who made an API request: the name its requests are logged
// under and the caller whose rights apply (protocol.MayRead and its
// siblings).
type Identity struct {
	Name   string
	Caller protocol.Caller
}
