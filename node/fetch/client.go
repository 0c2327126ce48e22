package fetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

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
func (f *Service) Fetch(ctx context.Context, cids ...cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	for _, c := range cids {
		if !protocol.IsRecordID(c) {
			return nil, fmt.Errorf("fetch: %s is not a record ID (CIDv1, dag-cbor, sha2-256)", c)
		}
	}
	if f.g.Closed() {
		return nil, service.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.g.Context(), cancel)()
	run := &fetchRun{f: f, budget: fetchMaxTotal, pending: map[cid.Cid]*protocol.Record{}}
	out := run.get(ctx, cids, 0)
	return out, f.ended(ctx)
}

// ended is the error of a fetch that returns: the node closing, ctx
// ending, or none.
func (f *Service) ended(ctx context.Context) error {
	switch {
	case f.g.Closed():
		return service.ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("fetch: %w", ctx.Err())
	}
	return nil
}

// fetchRun is one call of Fetch: the references it follows share its
// budget and what it has downloaded.
type fetchRun struct {
	f      *Service
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
		if rec, err := r.f.cfg.Store.Get(c); err == nil {
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
		acc, err := r.f.cfg.Ingest.Ingest(ctx, rec, service.SourceFetch)
		if err == nil {
			return acc.Record, true
		}
		ref, missing := protocol.MissingReference(err)
		if !missing || slices.Contains(tried, ref) || ctx.Err() != nil {
			if ctx.Err() == nil && !errors.Is(err, service.ErrClosed) {
				r.f.fetched.WithLabelValues("refused").Inc()
				r.f.log.Debug("fetched record refused", "cid", rec.CID().String(), "err", err)
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
	return downloadFrom(ctx, r.f, cids, r.f.FetchFrom)
}

// downloadFrom asks f's peers for cids with get, batch by batch, until
// each is found or every peer was asked.
func downloadFrom[T any](ctx context.Context, f *Service, cids []cid.Cid, get func(context.Context, peer.ID, []cid.Cid) (map[cid.Cid]T, error)) map[cid.Cid]T {
	got := make(map[cid.Cid]T, len(cids))
	missing := slices.Clone(cids)
	for _, p := range f.peers() {
		for start := 0; start < len(missing) && ctx.Err() == nil; start += protocol.FetchMaxCIDs {
			batch := missing[start:min(start+protocol.FetchMaxCIDs, len(missing))]
			answers, err := get(ctx, p, batch)
			for c, a := range answers {
				got[c] = a
			}
			if err != nil {
				if errors.Is(err, errRecordMismatch) {
					f.fetched.WithLabelValues("mismatch").Inc()
				}
				if ctx.Err() == nil {
					f.log.Debug("fetch from peer failed", "peer", p.String(), "err", err)
				}
				break
			}
		}
		missing = slices.DeleteFunc(missing, func(c cid.Cid) bool { _, ok := got[c]; return ok })
		if len(missing) == 0 || ctx.Err() != nil {
			break
		}
	}
	f.fetched.WithLabelValues("fetched").Add(float64(len(got)))
	f.fetched.WithLabelValues("not_found").Add(float64(len(missing)))
	return got
}

// FetchBlocks asks connected peers for decision blocks by CID, as Fetch
// asks for records, and returns those got, each checked against its CID
// and decoded. It stores nothing: the caller stores the blocks of a
// receipt it holds (store.PutBlocks). Errors are as Fetch's.
func (f *Service) FetchBlocks(ctx context.Context, cids ...cid.Cid) (map[cid.Cid][]byte, error) {
	if len(cids) > fetchMaxTotal {
		return nil, fmt.Errorf("fetch: %d blocks asked for at once (at most %d)", len(cids), fetchMaxTotal)
	}
	if f.g.Closed() {
		return nil, service.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(f.g.Context(), cancel)()
	out := downloadFrom(ctx, f, cids, func(ctx context.Context, p peer.ID, batch []cid.Cid) (map[cid.Cid][]byte, error) {
		got, err := f.fetchRaw(ctx, p, batch)
		for c, b := range got {
			if _, derr := protocol.DecodeDecisionBlock(b); derr != nil {
				delete(got, c)
				f.fetched.WithLabelValues("refused").Inc()
				f.log.Debug("fetched block refused", "cid", c.String(), "err", derr)
			}
		}
		return got, err
	})
	return out, f.ended(ctx)
}

// fetchPeers lists the connected peers to ask: founding nodes first, then
// the others, each group in random order to spread the load.
func (f *Service) peers() []peer.ID {
	var founding, others []peer.ID
	for _, p := range f.cfg.Host.Network().Peers() {
		if p == f.cfg.Host.ID() {
			continue
		}
		if _, ok := f.cfg.Trust.FoundingNode(p); ok {
			founding = append(founding, p)
		} else {
			others = append(others, p)
		}
	}
	rand.Shuffle(len(founding), func(i, j int) { founding[i], founding[j] = founding[j], founding[i] })
	rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	return append(founding, others...)
}

// FetchFrom sends one request for cids (at most protocol.FetchMaxCIDs)
// to p and reads the answers. It returns the records got, each checked
// against the CID asked for, and an error if the exchange ended early;
// what was got before the error is good.
func (f *Service) FetchFrom(ctx context.Context, p peer.ID, cids []cid.Cid) (map[cid.Cid]*protocol.Record, error) {
	raw, err := f.fetchRaw(ctx, p, cids)
	got := make(map[cid.Cid]*protocol.Record, len(raw))
	for c, data := range raw {
		rec, derr := protocol.Decode(data)
		if derr != nil {
			return got, fmt.Errorf("fetch: record %s: %w", c, derr)
		}
		got[c] = rec
	}
	return got, err
}

// fetchRaw sends one request for cids to p and returns the bytes of the
// answers, each checked against the CID asked for (a peer cannot pass
// off one block for another), and an error if the exchange ended early.
func (f *Service) fetchRaw(ctx context.Context, p peer.ID, cids []cid.Cid) (_ map[cid.Cid][]byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, fetchPeerTimeout)
	defer cancel()
	body, err := protocol.EncodeFetchRequest(cids)
	if err != nil {
		return nil, err
	}
	req := protocol.AppendFrame(nil, body)
	s, err := f.cfg.Host.NewStream(network.WithNoDial(ctx, "fetch from connected peers"), p, protocol.FetchProtocolID)
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
	got := make(map[cid.Cid][]byte, len(cids))
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
		if !protocol.RecordCID(data).Equals(c) {
			return got, fmt.Errorf("%w: asked for %s", errRecordMismatch, c)
		}
		got[c] = data
	}
	return got, s.Close()
}
