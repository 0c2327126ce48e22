// Package api is the node's HTTP API (DESIGN.md §8). It depends on the
// node's services through the small interfaces of Config, maps every
// error to its answer in one place (toAPIError) and writes every error
// answer through one function (writeError).
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/api/dashboard"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Records takes records from clients (the ingest pipeline).
type Records interface {
	Submit(ctx context.Context, raw []byte) (service.Accepted, error)
	// Import is Submit for the operator's import: exempt from freshness,
	// never gossiped.
	Import(ctx context.Context, raw []byte) (service.Accepted, error)
}

// Reader reads what the node holds and its log (*store.Store).
type Reader interface {
	Get(c cid.Cid) (*protocol.Record, error)
	List(q store.Query) ([]store.Entry, uint64, error)
	Seq(c cid.Cid) (uint64, error)
	Len() uint64
	Count(k protocol.Kind) int64
	InclusionProof(seq, size uint64) (tlog.RecordProof, error)
	Decisions(q store.DecisionQuery) ([]store.DecisionEntry, uint64, error)
	Notices(recipient string, after uint64, limit int) ([]store.Notice, error)
	MarkNotified(refs []store.DecisionRef, at int64) error
	NotifiedAt(receipt cid.Cid, item int) (int64, bool, error)
	ConsistencyProof(from, to uint64) (tlog.TreeProof, error)
	// Backup writes a backup of the store to w (GET /v1/backup).
	Backup(ctx context.Context, w io.Writer) (store.BackupInfo, error)
}

// Verifier decides transfers and bundles receipts (the verify service).
type Verifier interface {
	Verify(ctx context.Context, req protocol.TransferRequest) (*service.Verdict, error)
	VerifyBatch(ctx context.Context, reqs []protocol.TransferRequest) ([]*service.Verdict, error)
	// BundleFor bundles decision item of receipt c for a caller who may
	// read what mayRead accepts.
	BundleFor(c cid.Cid, item int, mayRead func(*protocol.Record) bool) (*protocol.Bundle, error)
}

// Checkpoints gives the log's latest checkpoint (the checkpoint service).
type Checkpoints interface {
	Latest() (protocol.SignedCheckpoint, error)
}

// Incidents is the incident read model (node/incidents): incidents
// assembled from their notices, and the events of new notices.
type Incidents interface {
	List(q service.IncidentQuery) (service.IncidentPage, error)
	Get(c cid.Cid) (*service.Incident, error)
	Events(q service.IncidentQuery, after uint64, limit int) (evs []service.IncidentEvent, scanned uint64, err error)
}

// Config configures the API. Every field is required unless marked.
type Config struct {
	// Access names each request's caller.
	Access      Access
	Records     Records
	Store       Reader
	Verifier    Verifier
	Checkpoints Checkpoints
	Blocks      Blocks
	// Status is the answer of GET /v1/status; partial for any caller but
	// the operator: without the counts of incidents and receipts. caller
	// is who asks (nil for the public), for the answer to name.
	Status func(partial bool, caller *CallerView) any
	// Ready says whether the node is ready, and why not.
	Ready func() (bool, string)
	// Peers is the number of connected peers, for /readyz.
	Peers func() int
	// Metrics is served at /metrics.
	Metrics prometheus.Gatherer
	Logger  *slog.Logger // optional
	Limits  Limits
	// Incidents serves /v1/incidents (optional: without it those routes
	// answer not_found).
	Incidents Incidents
	// Accepted returns a channel closed when the node next accepts a
	// record (the ingest pipeline's broadcast), which wakes the event
	// streams (optional: without it they look at each keepalive).
	Accepted func() <-chan struct{}
	// Notices wakes /v1/notices/stream when a notice is kept (optional:
	// without it that stream looks at each keepalive).
	Notices interface{ Wait() <-chan struct{} }
	// Streams bound the event streams; zero fields take the defaults.
	Streams Streams
	// Guard bounds who reaches the API and how often.
	Guard Guard
	// Registerer takes the API's metrics (optional).
	Registerer prometheus.Registerer
}

// Streams bound the Server-Sent Events streams.
type Streams struct {
	// Keepalive is the time between comment lines that keep an idle
	// stream open. Default 15 s.
	Keepalive time.Duration
	// WriteTimeout is how long one write to a stream may take before the
	// consumer is judged too slow and disconnected. Default 10 s.
	WriteTimeout time.Duration
}

// Stream defaults.
const (
	DefaultStreamKeepalive    = 15 * time.Second
	DefaultStreamWriteTimeout = 10 * time.Second
)

// Limits bound the API. The node's configuration gives them (see
// config.Limits); none may be zero.
type Limits struct {
	// MaxConcurrentRequests bounds HTTP requests in flight; past it the
	// API answers 503 overloaded.
	MaxConcurrentRequests int
	// MaxStreams bounds the open event streams, which are not requests in
	// flight; past it a new stream is answered 503 overloaded.
	MaxStreams int
	// MaxBatch bounds the requests of one verify-batch call.
	MaxBatch int
	// MaxBatchBytes bounds a verify-batch body.
	MaxBatchBytes int
	// The server's timeouts.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxPageBytes bounds a list page's bytes (past it the page ends with
	// its next); zero means DefaultMaxPageBytes.
	MaxPageBytes int
}

// DefaultMaxPageBytes is the default bound of a list page's bytes.
const DefaultMaxPageBytes = 1 << 20

// API is the HTTP API. Make one with New; Serve it on a listener and
// Shutdown.
type API struct {
	cfg     Config
	log     *slog.Logger
	srv     *http.Server
	g       *service.Group
	ln      *capListener
	hosts   hostGuard
	cors    corsGuard
	rates   *rateGuard
	metrics guardMetrics
	ui      *dashboard.Handler
	// stopping ends when the API shuts down; event streams end with it.
	stopping context.Context
	stop     context.CancelFunc
}

// New makes the API.
func New(cfg Config) (*API, error) {
	if cfg.Access == nil || cfg.Records == nil || cfg.Store == nil || cfg.Verifier == nil || cfg.Checkpoints == nil ||
		cfg.Blocks == nil || cfg.Status == nil || cfg.Ready == nil || cfg.Peers == nil || cfg.Metrics == nil {
		return nil, errors.New("api: Access, Records, Store, Verifier, Checkpoints, Blocks, Status, Ready, Peers and Metrics are required")
	}
	l := cfg.Limits
	if l.MaxConcurrentRequests <= 0 || l.MaxStreams <= 0 || l.MaxBatch <= 0 || l.MaxBatchBytes <= 0 ||
		l.ReadHeaderTimeout <= 0 || l.ReadTimeout <= 0 || l.WriteTimeout <= 0 || l.IdleTimeout <= 0 {
		return nil, fmt.Errorf("api: every limit must be positive: %+v", l)
	}
	if cfg.Streams.Keepalive < 0 || cfg.Streams.WriteTimeout < 0 {
		return nil, fmt.Errorf("api: stream limits may not be negative: %+v", cfg.Streams)
	}
	if cfg.Limits.MaxPageBytes <= 0 {
		cfg.Limits.MaxPageBytes = DefaultMaxPageBytes
	}
	if cfg.Streams.Keepalive == 0 {
		cfg.Streams.Keepalive = DefaultStreamKeepalive
	}
	if cfg.Streams.WriteTimeout == 0 {
		cfg.Streams.WriteTimeout = DefaultStreamWriteTimeout
	}
	service.Defaults(nil, &cfg.Logger)
	g := cfg.Guard
	if g.MaxConnections < 0 || g.MaxConnectionsPerClient < 0 || g.Rate < 0 || g.Burst < 0 || g.PublicRate < 0 {
		return nil, fmt.Errorf("api: guard bounds may not be negative: %+v", g)
	}
	a := &API{cfg: cfg, log: cfg.Logger, g: service.NewGroup(),
		hosts: newHostGuard(g.Hosts), cors: newCORSGuard(g.CORSOrigins), rates: newRateGuard(g)}
	a.metrics = newGuardMetrics(func() float64 {
		if a.ln == nil {
			return 0
		}
		return float64(a.ln.Open())
	})
	if cfg.Registerer != nil {
		a.metrics.register(cfg.Registerer)
	}
	var err error
	if a.ui, err = dashboard.New(dashboard.Config{NotFound: http.HandlerFunc(a.handleNotFound)}); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	a.stopping, a.stop = context.WithCancel(context.Background())
	a.srv = &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slogErrorLog(cfg.Logger),
	}
	return a, nil
}

// Listen listens on addr (host:port) and serves the API there until
// Shutdown, within the guard's connection bounds.
func (a *API) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api listen %s: %w", addr, err)
	}
	a.ln = newCapListener(ln, a.cfg.Guard.MaxConnections, a.cfg.Guard.MaxConnectionsPerClient, func(bound string) {
		a.metrics.refusedConns.WithLabelValues(bound).Inc()
		a.log.Debug("api connection refused", "bound", bound)
	})
	a.g.Go(func(context.Context) {
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("api server stopped", "err", err)
		}
	})
	return nil
}

// Addr is the address the API listens on, "" before Listen.
func (a *API) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Shutdown stops the server, letting requests in flight finish for up to
// five seconds, and waits for it. It is idempotent.
func (a *API) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.stop() // streams never end by themselves: end them before waiting for requests in flight
	err := a.srv.Shutdown(ctx)
	if err != nil {
		a.srv.Close()
		err = fmt.Errorf("api: %w", err)
	}
	a.g.Close()
	return err
}

// slogErrorLog routes net/http's internal error log to slog at debug
// level: those errors (bad TLS handshakes, broken connections) are caused
// by clients.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.With("library", "net/http").Handler(), slog.LevelDebug)
}

// Handler is the node's HTTP API (DESIGN.md §8).
func (a *API) Handler() http.Handler {
	return a.authenticate(a.recoverer(a.limitConcurrency(a.router())))
}

// router registers the API's routes and who may call each (DESIGN.md
// §8); reads are filtered to what the caller may see inside the
// handlers. Every route goes through rt.handle, which records it: the
// OpenAPI description (openapi.json) must describe each one.
func (a *API) router() *router {
	rt := newRouter(a)
	rt.handle("GET /v1/status", anyone, a.handleStatus)
	rt.handle("POST /v1/records", writers, a.handlePostRecord)
	rt.handle("GET /v1/records/{cid}", anyone, a.handleGetRecord)
	rt.handle("GET /v1/records", anyone, a.handleListRecords)
	rt.handle("POST /v1/transfers/verify", verifiers, a.handleVerify)
	rt.handle("POST /v1/transfers/verify-batch", verifiers, a.handleVerifyBatch)
	rt.handle("GET /v1/log/checkpoint", anyone, a.handleCheckpoint)
	rt.handle("GET /v1/log/proof", anyone, a.handleInclusionProof)
	rt.handle("GET /v1/log/consistency", anyone, a.handleConsistencyProof)
	rt.handle("GET /v1/receipts/{cid}/bundle", granted, a.handleReceiptBundle)
	rt.handle("GET /v1/receipts", granted, a.handleListReceipts)
	rt.handle("GET /v1/consents/{cid}/lineage", granted, a.handleLineage)
	rt.handle("GET /v1/notices/stream", verifiers, a.handleNoticeStream)
	rt.handle("GET /v1/incidents", anyone, a.handleListIncidents)
	rt.handle("GET /v1/incidents/stream", anyone, a.handleIncidentStream)
	rt.handle("GET /v1/incidents/{cid}", anyone, a.handleGetIncident)
	rt.handle("GET /v1/openapi.json", anyone, a.handleOpenAPI)
	rt.handle("GET /healthz", anyone, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	rt.handle("GET /readyz", anyone, a.handleReady)
	metrics := promhttp.HandlerFor(a.cfg.Metrics, promhttp.HandlerOpts{})
	rt.handle("GET /metrics", operators, metrics.ServeHTTP)
	rt.handle("GET /v1/backup", operators, a.handleBackup)
	// The web dashboard: a public page and its files, whose calls to the
	// API carry the user's token.
	rt.handle("GET /{$}", anyone, a.ui.ServeHTTP)
	rt.handle("GET "+dashboard.AssetPrefix+"{file}", anyone, a.ui.ServeHTTP)
	rt.handle("GET "+dashboard.AssetPrefix+"js/{file}", anyone, a.ui.ServeHTTP)
	return rt
}

// limitConcurrency answers 503 overloaded when MaxConcurrentRequests are
// already in flight, or MaxStreams event streams are open, rather than
// queueing without bound. A stream, open for hours, counts only against
// the streams.
func (a *API) limitConcurrency(h http.Handler) http.Handler {
	slots := make(chan struct{}, a.cfg.Limits.MaxConcurrentRequests)
	streams := make(chan struct{}, a.cfg.Limits.MaxStreams)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sem := slots
		if strings.HasSuffix(r.URL.Path, "/stream") {
			sem = streams
		}
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			h.ServeHTTP(w, r)
		default:
			a.writeError(w, r, service.ErrPushback)
		}
	})
}

func (a *API) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (a *API) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.writeError(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
}

func (a *API) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.cfg.Status(!callerOf(r).Operator, callerView(r)))
}

// CallerView is who made a request, as GET /v1/status names it to the
// caller itself: the operator, or a granted caller's name, role and peer.
type CallerView struct {
	Name   string `json:"name,omitempty"`
	Role   string `json:"role"`
	PeerID string `json:"peer_id,omitempty"`
}

// callerView is r's caller, nil for the public.
func callerView(r *http.Request) *CallerView {
	id := identityOf(r)
	switch c := id.Caller; {
	case c.Operator:
		return &CallerView{Role: "operator"}
	case c.Public():
		return nil
	default:
		return &CallerView{Name: id.Name, Role: string(c.Role), PeerID: c.Peer.String()}
	}
}

func (a *API) handleReady(w http.ResponseWriter, r *http.Request) {
	if ready, reason := a.cfg.Ready(); !ready {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "peers": a.cfg.Peers()})
}
