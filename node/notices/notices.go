// Package notices tells platforms that data they received must be erased
// or verified again (DESIGN.md §6, "Notices to platforms"): when the node
// accepts the revocation of a consent, or a consent that supersedes
// another, it keeps a notice for each recipient platform of the allowed
// decisions under that consent that its jurisdiction is the destination
// of — consent-revoked means erase, consent-superseded verify again under
// the amendment — and wakes the streams that carry them
// (/v1/notices/stream).
package notices

import (
	"log/slog"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Events of the notices stream.
const (
	EventRevoked    = "consent-revoked"
	EventSuperseded = "consent-superseded"
)

// Store is what the service needs of the store (*store.Store).
type Store interface {
	Get(c cid.Cid) (*protocol.Record, error)
	Decisions(q store.DecisionQuery) ([]store.DecisionEntry, uint64, error)
	PutNotice(n store.Notice) (uint64, error)
}

// Blocks reads decision blocks, decoded (the trust view).
type Blocks interface {
	DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error)
}

// Config configures the service; every field but Logger and Now is
// required.
type Config struct {
	Store        Store
	Blocks       Blocks
	Jurisdiction string // the node's: it tells the platforms of its decisions' destination
	Now          service.Clock
	Logger       *slog.Logger
}

// Service makes notices.
type Service struct {
	cfg Config
	mu  sync.Mutex
	new chan struct{} // closed and replaced when a notice is kept
}

// New makes the service.
func New(cfg Config) *Service {
	service.Defaults(&cfg.Now, &cfg.Logger)
	return &Service{cfg: cfg, new: make(chan struct{})}
}

// Wait returns a channel closed when the next notice is kept.
func (s *Service) Wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.new
}

// Accepted makes the notices a record the node just accepted calls for
// (ingest's OnAccept): a revocation of a consent, or a consent that
// supersedes another.
func (s *Service) Accepted(r *protocol.Record) {
	var target cid.Cid
	var event string
	switch b := r.Body().(type) {
	case *protocol.Revocation:
		target, event = b.Target.Cid, EventRevoked
	case *protocol.Consent:
		if b.Supersedes == nil {
			return
		}
		target, event = b.Supersedes.Cid, EventSuperseded
	default:
		return
	}
	if t, err := s.cfg.Store.Get(target); err != nil || t.Kind() != protocol.KindConsent {
		return // not a consent this node holds: no decision of its names it
	}
	if err := s.notify(r, target, event); err != nil {
		s.cfg.Logger.Error("notices to platforms failed", "consent", target.String(), "by", r.CID().String(), "err", err)
	}
}

// notify keeps one notice per recipient of the allowed decisions under
// consent whose destination is this node's jurisdiction.
func (s *Service) notify(by *protocol.Record, consent cid.Cid, event string) error {
	byRecipient := map[string][]store.DecisionRef{}
	var order []string
	q := store.DecisionQuery{Consent: consent, To: s.cfg.Jurisdiction, Limit: store.MaxListLimit}
	for {
		entries, next, err := s.cfg.Store.Decisions(q)
		if err != nil {
			return err
		}
		for _, e := range entries {
			blk, err := s.cfg.Blocks.DecisionBlock(e.Block)
			if err != nil {
				return err
			}
			if blk.Verdict != protocol.VerdictAllow {
				continue
			}
			who := blk.Request.Recipient
			if _, seen := byRecipient[who]; !seen {
				order = append(order, who)
			}
			byRecipient[who] = append(byRecipient[who], store.DecisionRef{Receipt: e.Receipt.String(), Item: e.Item})
		}
		if next == 0 {
			break
		}
		q.After = next
	}
	now := s.cfg.Now().UnixMilli()
	for _, who := range order {
		if _, err := s.cfg.Store.PutNotice(store.Notice{Event: event, Consent: consent.String(), By: by.CID().String(),
			Recipient: who, Decisions: byRecipient[who], At: now}); err != nil {
			return err
		}
	}
	if len(order) > 0 {
		s.mu.Lock()
		close(s.new)
		s.new = make(chan struct{})
		s.mu.Unlock()
	}
	return nil
}
