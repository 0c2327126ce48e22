// Package ingest is the one road into a node's store: a record from any
// source (the HTTP API, gossip, fetch, sync, the node itself) is accepted
// by the same steps, cheapest first: size; canonical decoding and schema
// (protocol.Decode); clock skew (protocol.CheckClock); already held (then
// it is a duplicate and nothing changes); freshness, for a record new
// from a client or gossip (protocol.CheckFresh, see mustBeFresh);
// signature; authorisation against what the node holds
// (protocol.Authorize, fetching a missing reference once for records from
// the API and gossip); durable store (the store's put returns after
// fsync); then the subscribers of new records. Records from the node's own
// clients that every member may receive are marked for the outbox, which
// gossips them once their commit is durable; the operator's imports are
// not (Import).
//
// Gossip's validator uses Forward: the same checks, answered as soon as
// they pass, with the record stored alongside, so that each hop forwards a
// record without waiting for its disk (docs/design-notes.md).
//
// Gossip and sync can deliver a record before what authorises it (a
// consent before its issuer's accreditation). Such a record is parked
// (IngestOrPark) under what it waits for, and tried again when that
// arrives, for up to ten minutes from when it was first parked
// (parked.go).
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/signature"
	"github.com/entente-net/entente/store"
)

// Store is what ingest needs of the store (*store.Store).
type Store interface {
	Lookup(c cid.Cid) (uint64, store.Absence, error)
	Has(c cid.Cid) (bool, error)
	PutNew(ctx context.Context, r *protocol.Record, absent store.Absence) (store.PutResult, error)
	PutReceipt(ctx context.Context, r *protocol.Record, blocks []store.Block) (store.PutResult, error)
}

// Fetcher gets records from peers by CID, ingesting what they send (the
// fetch service).
type Fetcher interface {
	Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error)
}

// Outbox is told of the records to gossip once durable (the gossip
// service's outbox): Expect before the put, Forget if the put did not
// write it.
type Outbox interface {
	Expect(r *protocol.Record)
	Forget(r *protocol.Record)
}

// Config configures a Pipeline. A zero field means the documented default.
type Config struct {
	Store Store              // required
	Trust protocol.TrustView // required: what authorisation reads
	// Fetcher fetches a reference a record from the API or gossip lacks;
	// nil fetches nothing. It may be set after New (SetFetcher), before
	// records arrive.
	Fetcher Fetcher
	Outbox  Outbox        // nil gossips nothing
	Now     service.Clock // default time.Now
	// MaxRecordAge is how old a record new from a client or gossip may be
	// (protocol.CheckFresh). Default limits.max_record_age (10m).
	MaxRecordAge time.Duration
	Logger       *slog.Logger // default discards
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxPending bounds records being ingested at once from the API
	// (past it Submit answers service.ErrPushback), and, apart, records
	// forwarded on gossip and still being stored (past it Forward waits).
	// Default 4096.
	MaxPending int
	// OnAccept are called, in order, with every new record once it is
	// durable, before the put that stored it returns to its caller.
	OnAccept []func(*protocol.Record)
	// SummaryEvery is how often the pipeline logs, at INFO, what it
	// received since the last time, when it received anything
	// (summary.go). Default DefaultSummaryEvery (1m).
	SummaryEvery time.Duration
}

// Bounds of the fetch made when a record from the API or gossip lacks a
// reference: gossip validation must stay fast.
const (
	fetchAPITimeout    = 5 * time.Second
	fetchGossipTimeout = 2 * time.Second
	// maxFetchHooks bounds those fetches in flight; past it a missing
	// reference is refused at once.
	maxFetchHooks = 32
)

// Pipeline is the ingest service. Make one with New; Close stops its
// parking loop.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	g       *service.Group
	fetcher Fetcher
	pending chan struct{} // bounds API ingests
	// alongside bounds the records forwarded on gossip and still being
	// stored (Forward).
	alongside chan struct{}
	// verifySem bounds signature checks in flight (verify).
	verifySem chan struct{}
	// keys holds precomputed tables of the keys that sign often.
	keys    *signature.Keys
	hooks   chan struct{}
	parked  *parking
	notify  *notifier
	metrics metrics
	tally   *tally
}

// New makes the pipeline and starts its parking loop.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Store == nil || cfg.Trust == nil {
		return nil, errors.New("ingest: Store and Trust are required")
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 4096
	}
	if cfg.MaxRecordAge == 0 {
		cfg.MaxRecordAge = config.Defaults().Limits.MaxRecordAge.Duration
	}
	if cfg.SummaryEvery <= 0 {
		cfg.SummaryEvery = DefaultSummaryEvery
	}
	if cfg.MaxRecordAge < 0 {
		return nil, fmt.Errorf("ingest: MaxRecordAge is negative (%s); zero means the default", cfg.MaxRecordAge)
	}
	p := &Pipeline{
		cfg:       cfg,
		log:       cfg.Logger,
		g:         service.NewGroup(),
		fetcher:   cfg.Fetcher,
		pending:   make(chan struct{}, cfg.MaxPending),
		alongside: make(chan struct{}, cfg.MaxPending),
		verifySem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)-1)),
		keys:      signature.NewKeys(0),
		hooks:     make(chan struct{}, maxFetchHooks),
		parked:    newParking(),
		notify:    newNotifier(),
		metrics:   newMetrics(),
		tally:     newTally(),
	}
	parked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_ingest_parked",
		Help: "Records parked now, waiting for what authorises them.",
	}, func() float64 { return float64(p.parked.count(p.cfg.Now())) })
	if err := service.Register(cfg.Registerer, "ingest", p.metrics.ingest, p.metrics.seconds, parked, p.parked.events); err != nil {
		return nil, err
	}
	p.parked.onExpire = p.tally.expire
	p.g.Go(p.retryParked)
	p.g.Go(p.summarise)
	return p, nil
}

// SetFetcher sets the fetcher of missing references, for a fetch service
// made after the pipeline. Call it before records arrive.
func (p *Pipeline) SetFetcher(f Fetcher) { p.fetcher = f }

// Close stops the parking loop and waits for it; ingests after it answer
// service.ErrClosed. It is idempotent.
func (p *Pipeline) Close() { p.g.Close() }

// Submit ingests one encoded record from a client (the HTTP API, the CLI,
// a test): it is checked, fresh included, stored durably and, when new and
// for every member, gossiped once durable. Refusals are *protocol.Error;
// service.ErrPushback when the node is saturated.
func (p *Pipeline) Submit(ctx context.Context, raw []byte) (service.Accepted, error) {
	return p.submit(ctx, raw, service.SourceAPI)
}

// Import is Submit for the operator's import (POST
// /v1/records?import=true; migrations, tests): the record need not be
// fresh, and it is stored and logged but never gossiped (sync serves it).
// Who may import is the caller's business.
func (p *Pipeline) Import(ctx context.Context, raw []byte) (service.Accepted, error) {
	acc, err := p.submit(ctx, raw, service.SourceImport)
	if err == nil && acc.New {
		p.log.Info("record imported", "cid", acc.CID.String(), "kind", string(acc.Record.Kind()),
			"issuer", acc.Record.Issuer().String(), "issued_at", acc.Record.IssuedAt(), "seq", acc.Seq)
	}
	return acc, err
}

func (p *Pipeline) submit(ctx context.Context, raw []byte, src service.Source) (service.Accepted, error) {
	select {
	case p.pending <- struct{}{}:
		defer func() { <-p.pending }()
	default:
		p.metrics.ingest.WithLabelValues(string(src), "overloaded").Inc()
		p.tally.refuse("overloaded")
		return service.Accepted{}, service.ErrPushback
	}
	start := time.Now()
	r, err := protocol.Decode(raw)
	if err != nil {
		p.count(src, start, service.Accepted{}, err)
		return service.Accepted{}, err
	}
	return p.Ingest(ctx, r, src)
}

// SubmitRecord is Submit for a record already in hand.
func (p *Pipeline) SubmitRecord(ctx context.Context, r *protocol.Record) (service.Accepted, error) {
	return p.Submit(ctx, r.Bytes())
}

// Ingest runs the checks of the package doc on a decoded record from src
// and stores it.
func (p *Pipeline) Ingest(ctx context.Context, r *protocol.Record, src service.Source) (acc service.Accepted, err error) {
	start := time.Now()
	defer func() { p.count(src, start, acc, err) }()
	acc, absent, err := p.check(ctx, r, src)
	if err != nil || acc.Seq != 0 {
		return acc, err
	}
	return p.store(ctx, r, src, absent)
}

// check runs the checks of the package doc on r from src, all but the
// store: a record already held is answered with its seq (acc.Seq);
// otherwise, with no error, r may be stored, and absent is the lookup
// that found it not held.
func (p *Pipeline) check(ctx context.Context, r *protocol.Record, src service.Source) (acc service.Accepted, absent store.Absence, err error) {
	if p.g.Closed() {
		return service.Accepted{}, absent, service.ErrClosed
	}
	now := p.cfg.Now()
	if err := protocol.CheckClock(r, now); err != nil {
		return service.Accepted{}, absent, err
	}
	seq, absent, err := p.cfg.Store.Lookup(r.CID())
	if err == nil {
		return service.Accepted{CID: r.CID(), Seq: seq, Record: r}, absent, nil
	}
	if mustBeFresh(src) {
		if err := protocol.CheckFresh(r, now, p.cfg.MaxRecordAge); err != nil {
			return service.Accepted{}, absent, err
		}
	}
	if err := p.verify(ctx, r); err != nil {
		return service.Accepted{}, absent, err
	}
	return service.Accepted{}, absent, p.authorize(ctx, r, src)
}

// store stores r, checked, durably, and applies its effects when new.
func (p *Pipeline) store(ctx context.Context, r *protocol.Record, src service.Source, absent store.Absence) (service.Accepted, error) {
	// The node's clients' records and its own go out on gossip; others
	// came from peers (who gossip them themselves, or serve them by sync)
	// or are the operator's imports, which are not gossiped.
	gossip := p.cfg.Outbox != nil && (src == service.SourceAPI || src == service.SourceLocal) && protocol.AudienceOf(r).Gossiped()
	if gossip {
		p.cfg.Outbox.Expect(r)
	}
	res, err := p.cfg.Store.PutNew(ctx, r, absent)
	if gossip && (err != nil || !res.New) {
		p.cfg.Outbox.Forget(r)
	}
	if err != nil {
		return service.Accepted{}, fmt.Errorf("store: %w", err)
	}
	if res.New {
		p.accepted(r, src)
	}
	return service.Accepted{CID: r.CID(), Seq: res.Seq, New: res.New, Record: r}, nil
}

// mustBeFresh reports whether a record new from src must be fresh
// (DESIGN.md §4): one from a client or from gossip enters the federation
// here. Records from sync and fetch, direct delivery and the operator's
// import are exempt, and so is a parked record, judged when it first
// arrived; the node's own records are made now.
func mustBeFresh(src service.Source) bool {
	return src == service.SourceAPI || src == service.SourceGossip
}

// StoreOwn stores a receipt this node just signed, with its decision
// blocks: it needs no signature check or authorisation, and is not
// gossiped.
func (p *Pipeline) StoreOwn(ctx context.Context, receipt *protocol.Record, blocks []store.Block) error {
	if p.g.Closed() {
		return service.ErrClosed
	}
	res, err := p.cfg.Store.PutReceipt(ctx, receipt, blocks)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if res.New {
		p.accepted(receipt, service.SourceLocal)
	}
	return nil
}

// Refused counts a record from src refused before it reached Ingest (one
// that did not decode, say) under code.
func (p *Pipeline) Refused(src service.Source, code string) {
	p.metrics.ingest.WithLabelValues(string(src), code).Inc()
	p.tally.refuse(code)
}

// WaitRecord blocks until the store holds c, ctx ends or the pipeline
// closes.
func (p *Pipeline) WaitRecord(ctx context.Context, c cid.Cid) error {
	for {
		ch := p.notify.wait()
		ok, err := p.cfg.Store.Has(c)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", c, ctx.Err())
		case <-p.g.Context().Done():
			return service.ErrClosed
		}
	}
}

// Accepted returns a channel that is closed at the next accepted record:
// a broadcast for waiters (see WaitRecord).
func (p *Pipeline) Accepted() <-chan struct{} { return p.notify.wait() }

// accepted applies a new record's effects.
func (p *Pipeline) accepted(r *protocol.Record, src service.Source) {
	if p.log.Enabled(context.Background(), slog.LevelDebug) { // the attributes cost more than the rest of this
		p.log.Debug("record accepted", "cid", r.CID().String(), "kind", string(r.Kind()), "issuer", r.Issuer().String(), "source", string(src))
	}
	p.tally.accept(r.Kind(), src)
	for _, fn := range p.cfg.OnAccept {
		fn(r)
	}
	p.notify.fire()
	p.parked.arrived(r, p.cfg.Now())
}

// verify checks r's signature, on all cores but one at a time (one on a
// single core). With many ingests in flight (gossip validators, API
// clients), unbounded CPU-bound goroutines would starve the
// single-goroutine stages that follow (the store's writer and Badger's,
// the acknowledgements, the gossip router): every commit then takes
// longer, holds more of the ingests waiting on it, and leaves the cores
// idle while it syncs. Leaving a core to those stages made ingest 5–10 %
// faster on two cores than verifying on both (docs/performance.md).
func (p *Pipeline) verify(ctx context.Context, r *protocol.Record) error {
	select {
	case p.verifySem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.verifySem }()
	return r.VerifySignatureWith(p.keys)
}

// authorize is protocol.Authorize, except that a record from the HTTP API
// or gossip refused because it links to a record this node lacks gets one
// attempt to fetch that record (with a short timeout: gossip validation
// waits on it) and is then authorised again. Fetched records themselves
// do not come here for their references: the fetcher follows those.
func (p *Pipeline) authorize(ctx context.Context, r *protocol.Record, src service.Source) error {
	err := protocol.Authorize(r, p.cfg.Trust)
	ref, missing := protocol.MissingReference(err)
	if !missing || p.fetcher == nil {
		return err
	}
	var timeout time.Duration
	switch src {
	case service.SourceAPI:
		timeout = fetchAPITimeout
	case service.SourceGossip:
		timeout = fetchGossipTimeout
	default:
		return err
	}
	select {
	case p.hooks <- struct{}{}:
		defer func() { <-p.hooks }()
	default:
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if got, _ := p.fetcher.Fetch(ctx, ref); got[ref] == nil {
		return err
	}
	return protocol.Authorize(r, p.cfg.Trust)
}

// notifier is a broadcast: wait returns a channel closed at the next fire.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newNotifier() *notifier { return &notifier{ch: make(chan struct{})} }

func (b *notifier) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *notifier) fire() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
