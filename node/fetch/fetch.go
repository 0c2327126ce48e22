// Package fetch asks peers for records and decision blocks by CID and
// answers their asking, over protocol.FetchProtocolID (the bytes are
// protocol's: "Wire protocols").
//
// The server answers each CID with the record, or the decision block of a
// receipt it holds, if the asker may receive it (protocol.MayReceive: a
// TLP:RED incident goes only to the nodes of its jurisdiction and of its
// recipients;
// protocol.MayReceiveBlock: a decision block to any member that asks for
// it by CID, for a lineage); anyone else gets "not held", exactly as for
// what the server does not hold, so a refusal reveals nothing. It gives a stream 10
// seconds in all, and resets it on any malformed input. Each peer may
// have 16 streams open at once and open 500 a second (servePeerLimit);
// past that its stream is reset, counted in
// entente_p2p_streams_throttled_total.
//
// The client (Fetch) asks the connected peers, founding nodes first, one
// after the other until every CID is found, and checks each answer against
// the CID it asked for before ingesting the record as any other
// (service.SourceFetch). A record whose authorisation needs a record the
// node lacks (an unknown_reference refusal) has that reference fetched
// first, to a depth of 8 links. FetchBlocks asks for decision blocks the
// same way and hands them, checked and decoded, to the caller to store.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Ingester ingests fetched records (the ingest pipeline).
type Ingester interface {
	Ingest(ctx context.Context, r *protocol.Record, src service.Source) (service.Accepted, error)
}

// Config configures the fetch service. A zero field means the documented
// default.
type Config struct {
	Host   host.Host    // required
	Store  *store.Store // required: what the server serves
	Trust  *trust.View  // required: who may receive what
	Ingest Ingester     // required
	Now    service.Clock
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Limits and timeouts of fetching.
const (
	// fetchStreamTimeout is all the time the server gives a stream.
	fetchStreamTimeout = 10 * time.Second
	// fetchPeerTimeout is all the time the client gives one peer to answer
	// one request.
	fetchPeerTimeout = 5 * time.Second
	// fetchMaxDepth is how many links deep the client follows missing
	// references of fetched records.
	fetchMaxDepth = 8
	// fetchMaxTotal bounds the CIDs one Fetch asks the network for,
	// references included.
	fetchMaxTotal = 256

	fetchServiceName = "entente.fetch"
	// fetchServerMemory is what a serving stream reserves: the request,
	// one record in hand and the write buffer.
	fetchServerMemory = protocol.FetchMaxRequest + protocol.MaxRecordSize + fetchWriteBuffer
	fetchWriteBuffer  = 4 << 10
	// fetchClientMemory is what a fetching stream reserves: the read
	// buffer and one answer frame.
	fetchClientMemory = fetchReadBuffer + protocol.FetchMaxAnswer
	fetchReadBuffer   = 4 << 10
)

// servePeerLimit bounds one peer's fetch streams. A node catching up by
// negentropy fetches what it lacks 64 CIDs a stream, one stream after the
// other: 224 streams a second measured (BenchmarkCatchUp, held=1000,
// 99 000 records in 6.9 s). The rate leaves twice that; a faster peer is
// slowed (a stream waits up to 2 s for its token, well within the
// client's fetchPeerTimeout) rather than refused. The references an
// ingest or a verify fetches add a few streams at once: 16 at a time.
var servePeerLimit = service.PeerLimit{Concurrent: 16, Rate: 500, Burst: 500, MaxWait: 2 * time.Second}

var (
	errRecordMismatch = errors.New("fetch: the record sent does not hash to the CID asked for")
	errFetchClosing   = errors.New("fetch: the node is shutting down")
)

// Service is the fetch protocol, server and client. Make one with New;
// Close stops serving and waits for the streams being served.
type Service struct {
	cfg Config
	log *slog.Logger
	g   *service.Group
	// served counts requests served, by result (ok, reset, throttled).
	served *prometheus.CounterVec
	// servedRecords counts answers given, by status (record, block,
	// not_held, withheld: what the asker may not have).
	servedRecords *prometheus.CounterVec
	// fetched counts CIDs asked for by this node, by result (fetched,
	// not_found, mismatch, refused: fetched but not ingested).
	fetched *prometheus.CounterVec
	// limit bounds each peer's streams (servePeerLimit).
	limit *service.PeerLimiter
}

// New serves the fetch protocol on the host.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil || cfg.Store == nil || cfg.Trust == nil || cfg.Ingest == nil {
		return nil, errors.New("fetch: Host, Store, Trust and Ingest are required")
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	f := &Service{
		cfg: cfg,
		log: cfg.Logger,
		g:   service.NewGroup(),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_requests_served_total",
			Help: "Fetch requests from peers, by result (ok, reset, throttled).",
		}, []string{"result"}),
		servedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_records_served_total",
			Help: "Records and decision blocks asked for by peers, by answer (record, block, not_held, withheld).",
		}, []string{"status"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_records_total",
			Help: "Records and decision blocks this node asked peers for, by result (fetched, not_found, mismatch, refused).",
		}, []string{"result"}),
	}
	if err := service.Register(cfg.Registerer, "fetch", f.served, f.servedRecords, f.fetched); err != nil {
		return nil, err
	}
	var err error
	if f.limit, err = service.NewPeerLimiter(protocol.FetchProtocolID, servePeerLimit, cfg.Registerer); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	f.g.ServeStreams(cfg.Host, protocol.FetchProtocolID, f.handle)
	return f, nil
}

// Close stops serving, resets the streams being served and waits for
// them; fetches in flight end with service.ErrClosed. It is idempotent.
func (f *Service) Close() { f.g.Close() }
