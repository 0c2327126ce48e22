// Package incidents is the node's read model of incidents: it assembles
// the incident notices the store holds into incidents, one per follows
// chain (DESIGN.md §4), named by the CID of the chain's first notice and
// showing the state of its latest notice (protocol.LaterNotice). It reads
// the store on every call and keeps nothing: the store is the one source,
// so that a listing, a lookup and an event stream never disagree.
//
// A chain's notices are ordered by the node's acceptance seq. A follow-up
// is accepted only once the notice it follows is held, so that order
// always puts a notice after the one it follows, and cutting a chain at a
// notice (Events) keeps exactly the notices this node had accepted when
// that notice arrived.
package incidents

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Store is what the read model reads (*store.Store).
type Store interface {
	Get(c cid.Cid) (*protocol.Record, error)
	Seq(c cid.Cid) (uint64, error)
	List(q store.Query) ([]store.Entry, uint64, error)
	// Recent is List of one kind from memory, when it remembers that far.
	Recent(k protocol.Kind, after uint64, limit int) ([]store.Entry, bool)
	LinkedFrom(target cid.Cid, kinds ...protocol.Kind) ([]*protocol.Record, error)
}

// Deliveries says where the direct delivery of a record stands, per
// target jurisdiction code (the delivery service). A record it knows
// nothing of gives an empty map.
type Deliveries interface {
	State(c cid.Cid) map[string]service.Delivery
}

// Config configures the read model. Store is required.
type Config struct {
	Store Store
	// Deliveries, optional, fills the delivery state of TLP red incidents.
	Deliveries Deliveries
}

// Model is the read model. Its methods are safe for concurrent use.
type Model struct {
	st  Store
	dlv Deliveries
	// events remembers the incident as of each notice lately streamed
	// (Events), shared by every subscriber.
	events eventCache
}

// New makes the read model.
func New(cfg Config) (*Model, error) {
	if cfg.Store == nil {
		return nil, errors.New("incidents: Store is required")
	}
	return &Model{st: cfg.Store, dlv: cfg.Deliveries, events: eventCache{bySeq: map[uint64]*service.Incident{}}}, nil
}

// Page sizes of List.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// maxChainNotices bounds the notices of one chain the model reads, as the
// transfer decision does.
const maxChainNotices = 1024

// scanPage is how many notices one store read takes.
const scanPage = 256

// ErrNotIncident is returned by Get for a CID that names a held record
// that is not an incident notice. It wraps store.ErrNotFound: there is no
// such incident.
var ErrNotIncident = fmt.Errorf("%w: not an incident notice", store.ErrNotFound)

// notice is a notice of a chain and its acceptance seq.
type notice struct {
	seq uint64
	rec *protocol.Record
	inc *protocol.Incident
}

// List returns the incidents that match q, in the order the node accepted
// their first notices, a page of at most q.Limit; Next is the cursor of
// the next page (the first notice's seq of the page's last incident), 0
// on the last page.
//
// It walks the incident notices by seq from q.After (the jurisdiction
// filter through the store's index), assembling the chain of each first
// notice: its cost grows with the incidents it passes over.
func (m *Model) List(q service.IncidentQuery) (service.IncidentPage, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return service.IncidentPage{}, fmt.Errorf("%w: negative limit %d", store.ErrInvalidQuery, limit)
	case limit == 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	page := service.IncidentPage{Incidents: []*service.Incident{}}
	var last uint64 // the first notice's seq of the page's last incident
	sq := store.Query{Kind: protocol.KindIncident, Jurisdiction: q.Jurisdiction, After: q.After, Limit: scanPage}
	for {
		entries, next, err := m.st.List(sq)
		if err != nil {
			return service.IncidentPage{}, err
		}
		for _, e := range entries {
			inc, ok := e.Record.Incident()
			if !ok || inc.Follows != nil {
				continue // a follow-up: listed with its chain's first notice
			}
			ns, err := m.chainFrom(notice{e.Seq, e.Record, inc})
			if err != nil {
				return service.IncidentPage{}, err
			}
			entry := m.entry(ns)
			if !matches(q, entry) {
				continue
			}
			if len(page.Incidents) == limit { // one more matches: there is a next page
				page.Next = last
				return page, nil
			}
			page.Incidents = append(page.Incidents, entry)
			last = e.Seq
		}
		if next == 0 {
			return page, nil
		}
		sq.After = next
	}
}

// Get returns the incident that the notice c belongs to, with every
// notice of its chain. A CID not held is store.ErrNotFound; one of a
// record that is not a notice, ErrNotIncident.
func (m *Model) Get(c cid.Cid) (*service.Incident, error) {
	r, err := m.st.Get(c)
	if err != nil {
		return nil, err
	}
	root, err := m.rootOf(r)
	if err != nil {
		return nil, err
	}
	ns, err := m.chainFrom(root)
	if err != nil {
		return nil, err
	}
	return m.entry(ns), nil
}

// Events returns the events of the notices accepted after seq after, in
// acceptance order: for each, its incident as of that notice (the chain
// cut at it). Only events whose entry matches q's filters (not After or
// Limit) are returned, at most limit of them; scanned is the seq up to
// which notices have been looked at, the after of the next call. scanned
// equals after when there is nothing new.
func (m *Model) Events(q service.IncidentQuery, after uint64, limit int) (evs []service.IncidentEvent, scanned uint64, err error) {
	if limit <= 0 || limit > scanPage {
		limit = scanPage
	}
	entries, scanned, err := m.noticesAfter(q.Jurisdiction, after, limit)
	if err != nil {
		return nil, after, err
	}
	for _, e := range entries {
		entry, err := m.eventAt(e)
		if err != nil {
			return nil, after, err
		}
		if entry != nil && matches(q, entry) {
			evs = append(evs, service.IncidentEvent{Seq: e.Seq, Incident: entry})
		}
	}
	return evs, scanned, nil
}

// noticesAfter returns up to limit notices of jurisdiction (any when "")
// accepted after seq after, and the seq up to which it looked. A stream
// asks for the notice just accepted, which the store still has in memory
// (Recent); further back it reads the index.
func (m *Model) noticesAfter(jurisdiction string, after uint64, limit int) ([]store.Entry, uint64, error) {
	if recent, ok := m.st.Recent(protocol.KindIncident, after, store.MaxListLimit); ok {
		scanned, out := after, recent[:0]
		for _, e := range recent {
			if jurisdiction != "" && e.Record.Jurisdiction() != jurisdiction {
				scanned = e.Seq
				continue
			}
			if len(out) == limit {
				break
			}
			out, scanned = append(out, e), e.Seq
		}
		return out, scanned, nil
	}
	entries, _, err := m.st.List(store.Query{Kind: protocol.KindIncident, Jurisdiction: jurisdiction, After: after, Limit: limit})
	if err != nil || len(entries) == 0 {
		return nil, after, err
	}
	return entries, entries[len(entries)-1].Seq, nil
}

// eventAt is the incident as of notice e (nil if e is no notice): its
// chain cut at e. That depends only on the notices accepted before e, so
// it is computed once and shared by every subscriber of the stream; only
// a TLP:RED incident's delivery state, which moves, is read each time.
func (m *Model) eventAt(e store.Entry) (*service.Incident, error) {
	if cached, ok := m.events.get(e.Seq); ok {
		return m.withDelivery(cached), nil
	}
	inc, ok := e.Record.Incident()
	if !ok {
		return nil, nil
	}
	// A notice's follow-ups are accepted after it (they are authorised
	// against it), so a chain's first notice is, cut at itself, alone.
	cut := []notice{{e.Seq, e.Record, inc}}
	if inc.Follows != nil {
		root, err := m.rootOf(e.Record)
		if err != nil {
			return nil, err
		}
		ns, err := m.chainFrom(root)
		if err != nil {
			return nil, err
		}
		// (empty when the chain walk found no notice at or before this one)
		if c := slices.DeleteFunc(ns, func(n notice) bool { return n.seq > e.Seq }); len(c) > 0 {
			cut = c
		}
	}
	entry := m.stateOf(cut)
	m.events.add(e.Seq, entry)
	return m.withDelivery(entry), nil
}

// eventCacheSize is how many notices' events the model remembers: a
// subscriber that falls further behind computes its own.
const eventCacheSize = 1024

// eventCache maps notice seqs to incidents as of them, the last
// eventCacheSize added.
type eventCache struct {
	mu    sync.Mutex
	bySeq map[uint64]*service.Incident
	order []uint64 // FIFO of bySeq's keys
}

func (c *eventCache) get(seq uint64) (*service.Incident, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.bySeq[seq]
	return e, ok
}

func (c *eventCache) add(seq uint64, e *service.Incident) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.bySeq[seq]; ok {
		return
	}
	if len(c.order) == eventCacheSize {
		delete(c.bySeq, c.order[0])
		c.order = c.order[1:]
	}
	c.bySeq[seq] = e
	c.order = append(c.order, seq)
}

// rootOf walks back r's follows links to the chain's first notice.
func (m *Model) rootOf(r *protocol.Record) (notice, error) {
	inc, ok := r.Incident()
	if !ok {
		return notice{}, ErrNotIncident
	}
	for range maxChainNotices {
		if inc.Follows == nil {
			break
		}
		prev, err := m.st.Get(inc.Follows.Cid)
		if errors.Is(err, store.ErrNotFound) {
			break // not held: the chain as this node knows it starts here
		}
		if err != nil {
			return notice{}, err
		}
		p, ok := prev.Incident()
		if !ok {
			break
		}
		r, inc = prev, p
	}
	seq, err := m.st.Seq(r.CID())
	if err != nil {
		return notice{}, err
	}
	return notice{seq, r, inc}, nil
}

// chainFrom returns the notices of the chain that starts at root, root
// first, then in acceptance order: the notices that follow root, and
// those that follow them, at most maxChainNotices.
func (m *Model) chainFrom(root notice) ([]notice, error) {
	ns := []notice{root}
	seen := map[string]bool{root.rec.CID().KeyString(): true}
	for i := 0; i < len(ns) && len(ns) < maxChainNotices; i++ {
		at := ns[i].rec.CID()
		next, err := m.st.LinkedFrom(at, protocol.KindIncident)
		if err != nil {
			return nil, err
		}
		for _, f := range next {
			inc, ok := f.Incident()
			k := f.CID().KeyString()
			if !ok || inc.Follows == nil || !inc.Follows.Equals(at) || seen[k] || len(ns) >= maxChainNotices {
				continue
			}
			seq, err := m.st.Seq(f.CID())
			if err != nil {
				return nil, err
			}
			seen[k] = true
			ns = append(ns, notice{seq, f, inc})
		}
	}
	slices.SortStableFunc(ns[1:], func(a, b notice) int { return cmp.Compare(a.seq, b.seq) })
	return ns, nil
}

// entry assembles the incident of the notices ns (a chain, root first).
func (m *Model) entry(ns []notice) *service.Incident { return m.withDelivery(m.stateOf(ns)) }

// stateOf is entry without the delivery state: what notices alone
// decide. Callers share what it returns and must not change it.
func (m *Model) stateOf(ns []notice) *service.Incident {
	parent := make(map[string]*protocol.Record, len(ns))
	byKey := make(map[string]*protocol.Record, len(ns))
	for _, n := range ns {
		byKey[n.rec.CID().KeyString()] = n.rec
	}
	for _, n := range ns {
		if n.inc.Follows != nil {
			if p, ok := byKey[n.inc.Follows.Cid.KeyString()]; ok {
				parent[n.rec.CID().KeyString()] = p
			}
		}
	}
	follows := func(a, b *protocol.Record) bool {
		for p := parent[a.CID().KeyString()]; p != nil; p = parent[p.CID().KeyString()] {
			if p.CID().Equals(b.CID()) {
				return true
			}
		}
		return false
	}
	state := ns[0]
	for _, n := range ns[1:] {
		if protocol.LaterNotice(n.rec, state.rec, follows) {
			state = n
		}
	}
	root, s := ns[0], state.inc
	e := &service.Incident{
		ID:           root.rec.CID().String(),
		Jurisdiction: root.inc.Jurisdiction,
		Ref:          root.inc.Ref,
		Issuer:       root.rec.Issuer().String(),
		Severity:     s.Severity,
		Status:       s.Status,
		TLP:          root.inc.TLP,
		Affected:     s.Affected,
		Categories:   s.Categories,
		DetectedAt:   s.DetectedAt,
		Summary:      s.Summary,
		Recipients:   root.inc.Recipients,
		Notices:      make([]string, len(ns)),
		Records:      make([]*protocol.Record, len(ns)),
		State:        state.rec,
	}
	for i, n := range ns {
		e.Notices[i] = n.rec.CID().String()
		e.Records[i] = n.rec
	}
	return e
}

// withDelivery is e, or for a TLP:RED incident a copy of it with the
// delivery state of its last notice.
func (m *Model) withDelivery(e *service.Incident) *service.Incident {
	if m.dlv == nil || e.TLP != protocol.TLPRed {
		return e
	}
	d := m.dlv.State(e.Records[len(e.Records)-1].CID())
	if len(d) == 0 {
		return e
	}
	cp := *e
	cp.Delivery = d
	return &cp
}

// matches reports whether entry passes q's filters.
func matches(q service.IncidentQuery, e *service.Incident) bool {
	switch {
	case q.Status != "" && e.Status != q.Status,
		q.Severity != "" && e.Severity.Rank() < q.Severity.Rank(),
		q.Jurisdiction != "" && e.Jurisdiction != q.Jurisdiction,
		q.Affected != "" && !slices.Contains(e.Affected, q.Affected),
		q.Since != 0 && e.State.IssuedAt() < q.Since,
		q.Visible != nil && !q.Visible(e):
		return false
	}
	return true
}
