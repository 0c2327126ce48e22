// Package verify answers transfer requests (DESIGN.md §5): it decides
// them from the records the node holds — fetching from member nodes first
// a consent it lacks, and the lineage of a resale (the parent decisions'
// receipts and blocks, lineage.go) — signs the verdicts as one receipt,
// stores it with its decision blocks and appends it to the log before it
// answers (a decision time outside the signing window is answered
// unsigned); and it assembles the bundle that lets an auditor re-check a
// decision and its lineage offline (bundle.go).
//
// Decisions share their store reads: each decision reads through a
// protocol.RecordView whose answers are kept in an evidence cache for the
// decisions after it, while no record but receipts arrives (cache.go).
package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Fetcher gets records and decision blocks from peers by CID (the fetch
// service).
type Fetcher interface {
	Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error)
	FetchBlocks(ctx context.Context, cids ...cid.Cid) (map[cid.Cid][]byte, error)
}

// Storer stores the receipts the node signs, with their decision blocks
// (the ingest pipeline).
type Storer interface {
	StoreOwn(ctx context.Context, receipt *protocol.Record, blocks []store.Block) error
}

// Checkpoints are the node's log's checkpoints (the checkpoint service).
type Checkpoints interface {
	Latest() (protocol.SignedCheckpoint, error)
	Sign() (protocol.SignedCheckpoint, error)
	// Held reports whether signing is held after a restore: a receipt
	// names the log's head, as a checkpoint does, so none is signed
	// either (DESIGN.md §6, "Restoring a node").
	Held() bool
}

// Config configures the service. A zero field means the documented
// default.
type Config struct {
	Store       *store.Store   // required
	Trust       *trust.View    // required
	Key         crypto.PrivKey // required: signs receipts
	Fetch       Fetcher        // nil fetches nothing
	Receipts    Storer         // required
	Checkpoints Checkpoints    // required, for bundles
	// MaxRecordAge is how old a decision time may be for the verdict to
	// be signed; older ones, and ones more than protocol.MaxClockSkew
	// ahead, are answered unsigned. Default: config.Defaults'
	// limits.max_record_age (10m).
	MaxRecordAge time.Duration
	Now          service.Clock
	Logger       *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Service decides, signs and bundles. Make one with New.
type Service struct {
	cfg      Config
	log      *slog.Logger
	id       peer.ID
	closed   atomic.Bool
	rules    *protocol.RuleEngine
	evidence *evidenceCache
	verdicts prometheus.Counter
}

// New makes the service; it owns no goroutine.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Trust == nil || cfg.Key == nil || cfg.Receipts == nil || cfg.Checkpoints == nil {
		return nil, errors.New("verify: Store, Trust, Key, Receipts and Checkpoints are required")
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	if cfg.MaxRecordAge == 0 {
		cfg.MaxRecordAge = config.Defaults().Limits.MaxRecordAge.Duration
	}
	id, err := peer.IDFromPrivateKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, id: id,
		rules:    protocol.NewRuleEngine(4096),
		evidence: newEvidenceCache(defaultEvidenceAnswers),
		verdicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_verdicts_total",
			Help: "Transfer requests decided by verify (signed, or answered unsigned for a time outside the signing window).",
		}),
	}
	if err := service.Register(cfg.Registerer, "verify", s.verdicts); err != nil {
		return nil, err
	}
	return s, nil
}

// Close makes later calls answer service.ErrClosed. It is idempotent.
func (s *Service) Close() { s.closed.Store(true) }

// Verify decides a transfer request (DESIGN.md §5) from the records the
// node holds — fetching the consent and the parent decisions from peers
// first if they are not held — signs the verdict as a receipt, stores it
// and appends it to the log. A zero req.At means now; an At outside the
// signing window (Signable) is answered unsigned (Verdict.Receipt nil), as
// is every request while signing is held after a restore.
func (s *Service) Verify(ctx context.Context, req protocol.TransferRequest) (*service.Verdict, error) {
	vs, err := s.VerifyBatch(ctx, []protocol.TransferRequest{req})
	if err != nil {
		return nil, err
	}
	return vs[0], nil
}

// Decide decides a transfer request from the records the node holds,
// without fetching, signing or storing anything: a dry run, and the
// decision procedure's cost alone. A zero req.At means now.
func (s *Service) Decide(req protocol.TransferRequest) (*protocol.Decision, error) {
	if req.At == 0 {
		req.At = s.cfg.Now().UnixMilli()
	}
	if err := req.Validate(""); err != nil {
		return nil, err
	}
	return protocol.Decide(&req, s.view(), s.rules)
}

// view is the view one decision reads through.
func (s *Service) view() *protocol.RecordView {
	return protocol.ReadThrough(s.cfg.Trust, s.evidence.at(s.cfg.Store.EvidenceEpoch()))
}

// VerifyBatch decides several requests and signs their verdicts as one
// receipt (one signature, one durable write, one log leaf), whose item i
// is the decision of reqs[i]. Results are in the order of reqs. A batch
// is signed when every request's At is within the signing window, and is
// otherwise answered unsigned, whole.
func (s *Service) VerifyBatch(ctx context.Context, reqs []protocol.TransferRequest) ([]*service.Verdict, error) {
	if s.closed.Load() {
		return nil, service.ErrClosed
	}
	if len(reqs) == 0 || len(reqs) > protocol.MaxDecisions {
		return nil, fmt.Errorf("verify: a receipt signs 1 to %d decisions, not %d", protocol.MaxDecisions, len(reqs))
	}
	now := s.cfg.Now().UnixMilli()
	for i := range reqs {
		if reqs[i].At == 0 {
			reqs[i].At = now
		}
		if err := reqs[i].Validate(""); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	s.fetchMissingConsents(ctx, reqs)
	s.fetchLineages(ctx, reqs)
	// Held after a restore, the node signs no log head, a receipt's
	// neither: it answers unsigned, as for a time outside the window.
	var unsigned string
	if s.cfg.Checkpoints.Held() {
		unsigned = service.UnsignedHeld
	}
	for i := range reqs {
		if unsigned == "" && !s.Signable(reqs[i].At, now) {
			unsigned = service.UnsignedTime
		}
	}
	tree, err := s.cfg.Store.TreeHead()
	if err != nil {
		return nil, err
	}
	out := make([]*service.Verdict, len(reqs))
	blocks := make([]store.Block, len(reqs))
	links := make([]cid.Cid, len(reqs))
	// Decide on every core; one signature then covers them all.
	errs := make([]error, len(reqs))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
			out[i], blocks[i].Data, links[i], errs[i] = s.decide(&reqs[i], i)
			blocks[i].Request = &reqs[i]
		}
	}
	var wg sync.WaitGroup
	for w := 1; w < min(len(reqs), runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // this goroutine too: a single request spawns none
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
	}
	s.verdicts.Add(float64(len(reqs)))
	if unsigned != "" {
		for _, v := range out {
			v.Unsigned = unsigned
		}
		return out, nil
	}
	// The receipt body is new and nothing changes it after: the record
	// may keep it.
	rec, err := protocol.SignOwned(s.cfg.Key, now, protocol.NewReceipt(links, protocol.Checkpoint{Size: int64(tree.Size), Root: tree.Root[:]}))
	if err != nil {
		return nil, fmt.Errorf("sign receipt: %w", err)
	}
	// The decoded blocks go into the trust view's cache before the
	// receipt is accepted: what reads them next (delivery, the register,
	// a resale's lineage) finds them there.
	for i, v := range out {
		s.cfg.Trust.KeepBlock(links[i], v.Block)
	}
	if err := s.cfg.Receipts.StoreOwn(ctx, rec, blocks); err != nil {
		return nil, fmt.Errorf("store receipts: %w", err)
	}
	for _, v := range out {
		v.Receipt = rec
	}
	return out, nil
}

// Signable reports whether a decision for time at (Unix ms) is signed
// when decided at now: at lies within [now − MaxRecordAge, now +
// protocol.MaxClockSkew] (DESIGN.md §5).
func (s *Service) Signable(at, now int64) bool {
	return at >= now-s.cfg.MaxRecordAge.Milliseconds() && at <= now+protocol.MaxClockSkew.Milliseconds()
}

// decide decides one request, decision item of its receipt, and encodes
// its block.
func (s *Service) decide(req *protocol.TransferRequest, item int) (*service.Verdict, []byte, cid.Cid, error) {
	d, err := protocol.Decide(req, s.view(), s.rules)
	if err != nil {
		return nil, nil, cid.Undef, err
	}
	blk := d.Block(*req)
	enc, c, err := blk.Encode()
	if err != nil {
		return nil, nil, cid.Undef, fmt.Errorf("decision block: %w", err)
	}
	return &service.Verdict{Decision: d, Block: blk, Item: item}, enc, c, nil
}

// fetchMissingConsents asks peers for the consents of reqs that the node
// does not hold, so that consent.known reflects the federation, not only
// this node.
func (s *Service) fetchMissingConsents(ctx context.Context, reqs []protocol.TransferRequest) {
	if s.cfg.Fetch == nil {
		return
	}
	var missing []cid.Cid
	for _, r := range reqs {
		if ok, err := s.cfg.Store.Has(r.Consent.Cid); err == nil && !ok {
			missing = append(missing, r.Consent.Cid)
		}
	}
	if len(missing) == 0 {
		return
	}
	if _, err := s.cfg.Fetch.Fetch(ctx, missing...); err != nil {
		s.log.Debug("fetching consents for a decision", "missing", len(missing), "err", err)
	}
}
