package node

// Fetch: asking peers for records by CID, over the libp2p protocol
// /entente/fetch/1.0.0 (protocol.FetchProtocolID).
//
// The bytes are protocol's ("Wire protocols"). A TLP:RED incident is
// sent only to a peer that may receive it (protocol's audience rule);
// anyone else gets "not held", exactly as for a record the server does not
// hold, so a refusal reveals nothing. The server gives a stream 10
// seconds in all, and resets it on any malformed input.
//
// # Client
//
// Node.Fetch asks the connected peers, founding nodes first, one after the
// other until every CID is found, and checks each answer against the CID
// it asked for before ingesting the record as any other (Source "fetch").
// A record whose authorisation needs a record the node lacks (an
// unknown_reference refusal) has that reference fetched first, to a depth
// of fetchMaxDepth links. Records from the HTTP API and from gossip that
// are refused for a missing reference have it fetched once (see authorize)
// before the refusal stands.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

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

	// Bounds of the fetch made when a record from the API or gossip lacks
	// a reference: gossip validation must stay fast.
	fetchAPITimeout    = 5 * time.Second
	fetchGossipTimeout = 2 * time.Second
	// fetchMaxHooks bounds those fetches in flight; past it a missing
	// reference is refused at once.
	fetchMaxHooks = 32

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

var (
	errRecordMismatch = errors.New("fetch: the record sent does not hash to the CID asked for")
	errFetchClosing   = errors.New("fetch: the node is shutting down")
)

// fetcher is the node's fetch protocol state: its metrics, the streams
// being served, and the slots of the ingest hook.
type fetcher struct {
	// served counts requests served, by result (ok, reset).
	served *prometheus.CounterVec
	// servedRecords counts answers given, by status (record, not_held,
	// withheld: a TLP:RED incident the asker may not have).
	servedRecords *prometheus.CounterVec
	// fetched counts CIDs asked for by this node, by result (fetched,
	// not_found, mismatch, refused: fetched but not ingested).
	fetched *prometheus.CounterVec

	hooks chan struct{}
}

// startFetch serves the fetch protocol on the node's host. When the node's
// context ends it stops serving and waits for streams being served, which
// the cancellation resets.
func (n *Node) startFetch() error {
	f := &fetcher{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_requests_served_total",
			Help: "Fetch requests from peers, by result (ok, reset).",
		}, []string{"result"}),
		servedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_records_served_total",
			Help: "Records asked for by peers, by answer (record, not_held, withheld).",
		}, []string{"status"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_fetch_records_total",
			Help: "Records this node asked peers for, by result (fetched, not_found, mismatch, refused).",
		}, []string{"result"}),
		hooks: make(chan struct{}, fetchMaxHooks),
	}
	for _, c := range []prometheus.Collector{f.served, f.servedRecords, f.fetched} {
		if err := n.metrics.reg.Register(c); err != nil {
			return fmt.Errorf("node: fetch metrics: %w", err)
		}
	}
	n.fetch = f
	n.serveStreams(protocol.FetchProtocolID, n.handleFetch)
	return nil
}

// handleFetch serves one fetch stream: Close when every answer is
// written, Reset on any error.
func (n *Node) handleFetch(s network.Stream) {
	// Counted before the peer can see the outcome, so that whoever has
	// seen it finds it counted.
	if err := n.serveFetch(s); err != nil {
		n.fetch.served.WithLabelValues("reset").Inc()
		s.Reset()
		n.log.Debug("fetch stream reset", "peer", s.Conn().RemotePeer().String(), "err", err)
		return
	}
	n.fetch.served.WithLabelValues("ok").Inc()
	s.Close()
}

func (n *Node) serveFetch(s network.Stream) error {
	if n.ctx.Err() != nil {
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
		rec, err := n.servable(c, remote)
		if err != nil {
			return err
		}
		var b []byte
		if rec != nil {
			b = rec.Bytes()
		}
		buf = protocol.AppendFetchAnswer(buf[:0], b)
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return w.Flush()
}

// servable returns the held record c if remote may have it
// (protocol.MayReceive), nil if the answer is "not held".
func (n *Node) servable(c cid.Cid, remote peer.ID) (*protocol.Record, error) {
	rec, err := n.store.Get(c)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n.fetch.servedRecords.WithLabelValues("not_held").Inc()
		return nil, nil
	case err != nil:
		return nil, err
	}
	ok, err := protocol.MayReceive(n.trust, rec, remote, n.cfg.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	if !ok {
		n.fetch.servedRecords.WithLabelValues("withheld").Inc()
		return nil, nil
	}
	n.fetch.servedRecords.WithLabelValues("record").Inc()
	return rec, nil
}

// Fetch asks connected peers for the records cids and ingests those they
// send, as records from any source are (Source "fetch"); fetched records
// are not gossiped. Peers are asked one after another, founding nodes
// first, each given 5 seconds, until every CID is found. An answer that
// does not hash to the CID asked for is discarded with the rest of that
// peer's answers. A fetched record refused for a missing reference has the
// reference fetched first, up to 8 links deep; one call asks the network
// for at most 256 CIDs, references included.
//
// The map holds each of cids the node holds afterwards, whether it held
// it already or fetched it now; a CID no peer would give is absent, which
// is not an error. Errors are for a CID that is not a record ID, the node
// closing (ErrClosed) or ctx ending; the map then holds what was got
// before.
func (n *Node) Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	for _, c := range cids {
		if !protocol.IsRecordID(c) {
			return nil, fmt.Errorf("fetch: %s is not a record ID (CIDv1, dag-cbor, sha2-256)", c)
		}
	}
	if n.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.ctx, cancel)()
	run := &fetchRun{n: n, budget: fetchMaxTotal, pending: map[cid.Cid]*protocol.Record{}}
	out := run.get(ctx, cids, 0)
	switch {
	case n.ctx.Err() != nil:
		return out, ErrClosed
	case ctx.Err() != nil:
		return out, fmt.Errorf("fetch: %w", ctx.Err())
	}
	return out, nil
}

// fetchRun is one call of Fetch: the references it follows share its
// budget and what it has downloaded.
type fetchRun struct {
	n      *Node
	budget int // CIDs that may still be asked of the network
	// pending are records downloaded and not yet ingested, so that a
	// record asked for together with its reference is downloaded once.
	pending map[cid.Cid]*protocol.Record
}

// get returns those of cids the node holds after asking peers for the
// ones it lacks and ingesting what they send; depth is how many links away
// from the CIDs Fetch was given they are.
func (r *fetchRun) get(ctx context.Context, cids []cid.Cid, depth int) map[cid.Cid]*protocol.Record {
	out := make(map[cid.Cid]*protocol.Record, len(cids))
	seen := make(map[cid.Cid]bool, len(cids))
	var want []cid.Cid
	for _, c := range cids {
		if seen[c] {
			continue
		}
		seen[c] = true
		if rec, err := r.n.store.Get(c); err == nil {
			out[c] = rec
		} else if _, ok := r.pending[c]; !ok {
			want = append(want, c)
		}
	}
	if depth > fetchMaxDepth {
		want = nil
	}
	want = want[:min(len(want), r.budget)]
	r.budget -= len(want)
	if len(want) > 0 {
		for c, rec := range r.download(ctx, want) {
			r.pending[c] = rec
		}
	}
	for _, c := range cids {
		rec, ok := r.pending[c]
		if !ok {
			continue
		}
		delete(r.pending, c)
		if acc, ok := r.ingest(ctx, rec, depth); ok {
			out[c] = acc
		}
	}
	return out
}

// ingest ingests a downloaded record, fetching first the references its
// authorisation finds missing.
func (r *fetchRun) ingest(ctx context.Context, rec *protocol.Record, depth int) (*protocol.Record, bool) {
	var tried []cid.Cid
	for {
		acc, err := r.n.ingestCounted(ctx, rec, SourceFetch)
		if err == nil {
			return acc.Record, true
		}
		ref, missing := missingRef(err)
		if !missing || slices.Contains(tried, ref) || ctx.Err() != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				r.n.fetch.fetched.WithLabelValues("refused").Inc()
				r.n.log.Debug("fetched record refused", "cid", rec.CID().String(), "err", err)
			}
			return nil, false
		}
		tried = append(tried, ref)
		if _, ok := r.get(ctx, []cid.Cid{ref}, depth+1)[ref]; !ok {
			return nil, false
		}
	}
}

// download asks peers for cids until each is found or every peer was
// asked, and returns the records got, each checked against its CID.
func (r *fetchRun) download(ctx context.Context, cids []cid.Cid) map[cid.Cid]*protocol.Record {
	got := make(map[cid.Cid]*protocol.Record, len(cids))
	missing := slices.Clone(cids)
	for _, p := range r.n.fetchPeers() {
		for start := 0; start < len(missing) && ctx.Err() == nil; start += protocol.FetchMaxCIDs {
			batch := missing[start:min(start+protocol.FetchMaxCIDs, len(missing))]
			recs, err := r.n.askPeer(ctx, p, batch)
			for c, rec := range recs {
				got[c] = rec
			}
			if err != nil {
				if errors.Is(err, errRecordMismatch) {
					r.n.fetch.fetched.WithLabelValues("mismatch").Inc()
				}
				if ctx.Err() == nil {
					r.n.log.Debug("fetch from peer failed", "peer", p.String(), "err", err)
				}
				break
			}
		}
		missing = slices.DeleteFunc(missing, func(c cid.Cid) bool { _, ok := got[c]; return ok })
		if len(missing) == 0 || ctx.Err() != nil {
			break
		}
	}
	r.n.fetch.fetched.WithLabelValues("fetched").Add(float64(len(got)))
	r.n.fetch.fetched.WithLabelValues("not_found").Add(float64(len(missing)))
	return got
}

// fetchPeers lists the connected peers to ask: founding nodes first, then
// the others, each group in random order to spread the load.
func (n *Node) fetchPeers() []peer.ID {
	var founding, others []peer.ID
	for _, p := range n.host.Network().Peers() {
		if p == n.id {
			continue
		}
		if _, ok := n.trust.FoundingNode(p); ok {
			founding = append(founding, p)
		} else {
			others = append(others, p)
		}
	}
	rand.Shuffle(len(founding), func(i, j int) { founding[i], founding[j] = founding[j], founding[i] })
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	return append(founding, others...)
}

// askPeer sends one request for cids (at most protocol.FetchMaxCIDs) to p and reads
// the answers. It returns the records got, each checked against the CID
// asked for, and an error if the exchange ended early; what was got before
// the error is good.
func (n *Node) askPeer(ctx context.Context, p peer.ID, cids []cid.Cid) (_ map[cid.Cid]*protocol.Record, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchPeerTimeout)
	defer cancel()
	body, err := protocol.EncodeFetchRequest(cids)
	if err != nil {
		return nil, err
	}
	req := protocol.AppendFrame(nil, body)
	s, err := n.host.NewStream(network.WithNoDial(ctx, "fetch from connected peers"), p, protocol.FetchProtocolID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := s.Scope().SetService(fetchServiceName); err != nil {
		return nil, err
	}
	if err := s.Scope().ReserveMemory(fetchClientMemory, network.ReservationPriorityAlways); err != nil {
		return nil, err
	}
	defer s.Scope().ReleaseMemory(fetchClientMemory)
	if deadline, ok := ctx.Deadline(); ok {
		if err := s.SetDeadline(deadline); err != nil {
			return nil, err
		}
	}
	if _, err := s.Write(req); err != nil {
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		return nil, err
	}
	got := make(map[cid.Cid]*protocol.Record, len(cids))
	br := bufio.NewReaderSize(s, fetchReadBuffer)
	for _, c := range cids {
		frame, err := protocol.ReadFrame(br, protocol.FetchMaxAnswer)
		if err != nil {
			return got, err
		}
		data, held, err := protocol.DecodeFetchAnswer(frame)
		if err != nil {
			return got, err
		}
		if !held {
			continue
		}
		rec, err := decodeFetched(c, data)
		if err != nil {
			return got, err
		}
		got[c] = rec
	}
	return got, s.Close()
}

// decodeFetched checks that data is the record c: its bytes hash to c, so
// a peer cannot pass off one record for another, and it decodes. Its
// signature and authorisation are for ingest to check.
func decodeFetched(c cid.Cid, data []byte) (*protocol.Record, error) {
	if !protocol.RecordCID(data).Equals(c) {
		return nil, fmt.Errorf("%w: asked for %s", errRecordMismatch, c)
	}
	rec, err := protocol.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("fetch: record %s: %w", c, err)
	}
	return rec, nil
}

// authorize is protocol.Authorize, except that a record from the HTTP API
// or gossip refused because it links to a record this node lacks gets one
// attempt to fetch that record (with a short timeout: gossip validation
// waits on it) and is then authorised again. Fetched records themselves
// do not come here for their references: Fetch follows those.
func (n *Node) authorize(ctx context.Context, r *protocol.Record, src Source) error {
	err := protocol.Authorize(r, n.trust)
	ref, missing := missingRef(err)
	if !missing {
		return err
	}
	var timeout time.Duration
	switch src {
	case SourceAPI:
		timeout = fetchAPITimeout
	case SourceGossip:
		timeout = fetchGossipTimeout
	default:
		return err
	}
	select {
	case n.fetch.hooks <- struct{}{}:
		defer func() { <-n.fetch.hooks }()
	default:
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if got, _ := n.Fetch(ctx, ref); got[ref] == nil {
		return err
	}
	return protocol.Authorize(r, n.trust)
}

// missingRef returns the record an unknown_reference refusal names.
func missingRef(err error) (cid.Cid, bool) {
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownReference || pe.Ref == "" {
		return cid.Undef, false
	}
	c, err := protocol.ParseCID(pe.Ref)
	return c, err == nil
}
