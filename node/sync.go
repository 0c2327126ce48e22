package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/negentropy"
)

// Sync reconciles this node's record set with a peer's over
// /entente/sync/1.0.0, so that a node that was away, restarted or
// partitioned ends up with what its peers hold. The set is store.Syncable
// records (all but receipts and TLP:RED notices), keyed by (issued_at,
// CID) and reconciled with negentropy (range-based set reconciliation):
// the initiator learns which records it lacks and fetches them from that
// peer; the peer, which runs its own sessions, fetches what it lacks. A
// node that holds nothing asks for the peer's whole set instead, over
// /entente/sync-all/1.0.0. The bytes are protocol's ("Wire protocols").
const (
	syncSessionTime   = 2 * time.Minute
	syncMaxSessions   = 4 // sessions this node initiates at once
	syncFetchChunk    = 64
	syncIngestWorkers = 128
	syncServiceName   = "entente.sync"
	syncMemory        = 2 * protocol.SyncMaxFrame
)

// syncIndex is the node's sync set in memory, and the sorted vector built
// from it (rebuilt when the set grew).
type syncIndex struct {
	mu    sync.Mutex
	items []negentropy.Item
	vec   *negentropy.Vector
}

func (x *syncIndex) add(issuedAt int64, c cid.Cid) {
	id, ok := protocol.SyncID(c)
	if !ok {
		return
	}
	x.mu.Lock()
	x.items = append(x.items, negentropy.Item{Timestamp: uint64(issuedAt), ID: id})
	x.vec = nil
	x.mu.Unlock()
}

func (x *syncIndex) vector() (*negentropy.Vector, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.vec == nil {
		v, err := negentropy.NewVector(append([]negentropy.Item(nil), x.items...))
		if err != nil {
			return nil, err
		}
		x.vec = v
	}
	return x.vec, nil
}

func (x *syncIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.items)
}

// SyncPeerStatus is the sync state with one peer, as status shows it.
type SyncPeerStatus struct {
	PeerID     string `json:"peer_id"`
	InProgress bool   `json:"in_progress"`
	Sessions   int    `json:"sessions"`
	LastEnd    string `json:"last_end,omitempty"`
	Rounds     int    `json:"rounds"`
	BytesOut   int    `json:"bytes_out"`
	BytesIn    int    `json:"bytes_in"`
	FetchBytes int    `json:"fetch_bytes"`
	Need       int    `json:"need"`
	Have       int    `json:"have"`
	Fetched    int    `json:"fetched"`
	LastError  string `json:"last_error,omitempty"`
}

type syncer struct {
	index   syncIndex
	wake    chan peer.ID
	mu      sync.Mutex
	peers   map[peer.ID]*SyncPeerStatus
	slots   chan struct{}
	notifee *network.NotifyBundle
}

func (n *Node) startSync() error {
	s := &syncer{wake: make(chan peer.ID, 64), peers: map[peer.ID]*SyncPeerStatus{}, slots: make(chan struct{}, syncMaxSessions)}
	err := n.store.SyncItems(func(at int64, c cid.Cid) error {
		s.index.add(at, c)
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: reading the sync set: %w", err)
	}
	n.sync = s
	n.serveStreams(protocol.SyncProtocolID, n.handleSync)
	n.serveStreams(protocol.SyncAllProtocolID, n.handleSyncAll)
	s.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		select {
		case s.wake <- c.RemotePeer():
		default: // the loop is behind; the interval will catch up
		}
	}}
	n.host.Network().Notify(s.notifee)
	if n.cfg.DisableSync {
		n.host.Network().StopNotify(s.notifee)
		return nil
	}
	// Peers that connected before the notifiee was in place.
	for _, p := range n.host.Network().Peers() {
		select {
		case s.wake <- p:
		default:
		}
	}
	n.wg.Add(1)
	go n.syncLoop()
	return nil
}

// syncLoop starts a session with a peer when it connects and with every
// connected member on each SyncInterval, one session per peer at a time.
func (n *Node) syncLoop() {
	defer n.wg.Done()
	defer n.host.Network().StopNotify(n.sync.notifee)
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	var sessions sync.WaitGroup
	defer sessions.Wait()
	start := func(p peer.ID) {
		if !n.sync.begin(p) {
			return
		}
		sessions.Add(1)
		go func() {
			defer sessions.Done()
			defer n.sync.end(p)
			select {
			case n.sync.slots <- struct{}{}:
			case <-n.ctx.Done():
				return
			}
			defer func() { <-n.sync.slots }()
			n.SyncWith(n.ctx, p)
		}()
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case p := <-n.sync.wake:
			start(p)
		case <-t.C:
			for _, p := range n.host.Network().Peers() {
				start(p)
			}
		}
	}
}

// begin marks a session with p as running; false if one already is.
func (s *syncer) begin(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.peers[p]
	if st == nil {
		st = &SyncPeerStatus{PeerID: p.String()}
		s.peers[p] = st
	}
	if st.InProgress {
		return false
	}
	st.InProgress = true
	return true
}

func (s *syncer) end(p peer.ID) {
	s.mu.Lock()
	if st := s.peers[p]; st != nil {
		st.InProgress = false
	}
	s.mu.Unlock()
}

func (s *syncer) record(p peer.ID, res SyncResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.peers[p]
	if st == nil {
		st = &SyncPeerStatus{PeerID: p.String()}
		s.peers[p] = st
	}
	st.Sessions++
	st.LastEnd = time.Now().UTC().Format(time.RFC3339)
	st.Rounds, st.BytesOut, st.BytesIn = res.Rounds, res.BytesOut, res.BytesIn
	st.Need, st.Have, st.Fetched, st.FetchBytes = res.Need, res.Have, res.Fetched, res.FetchBytes
	st.LastError = ""
	if err != nil {
		st.LastError = err.Error()
	}
}

// SyncStatus lists the sync state with each peer a session ran with.
func (n *Node) SyncStatus() []SyncPeerStatus {
	n.sync.mu.Lock()
	defer n.sync.mu.Unlock()
	out := make([]SyncPeerStatus, 0, len(n.sync.peers))
	for _, st := range n.sync.peers {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PeerID < out[j].PeerID })
	return out
}

// SyncResult is what one session did.
type SyncResult struct {
	Rounds            int // messages the initiator sent
	BytesOut, BytesIn int // negentropy bytes each way
	Need, Have        int // records this node lacked / the peer lacked
	Fetched           int // records fetched and accepted
	FetchBytes        int // fetch requests and answers, with their framing (not libp2p's)
}

// SyncWith runs one session with p as the initiator: reconcile, then
// fetch and ingest what this node lacks.
func (n *Node) SyncWith(ctx context.Context, p peer.ID) (SyncResult, error) {
	if n.sync.index.len() == 0 {
		res, err := n.syncAll(ctx, p)
		n.finishSync(ctx, p, res, err)
		return res, err
	}
	res, need, err := n.reconcile(ctx, p)
	if err == nil && len(need) > 0 {
		res.Fetched, res.FetchBytes, err = n.fetchNeeded(ctx, p, need)
	}
	n.finishSync(ctx, p, res, err)
	return res, err
}

func (n *Node) finishSync(ctx context.Context, p peer.ID, res SyncResult, err error) {
	if err != nil && ctx.Err() == nil {
		n.log.Debug("sync failed", "peer", p.String(), "err", err)
	}
	n.sync.record(p, res, err)
	n.metrics.syncSessions.Inc()
}

func (n *Node) reconcile(ctx context.Context, p peer.ID) (res SyncResult, need []negentropy.ID, err error) {
	ctx, cancel := context.WithTimeout(ctx, syncSessionTime)
	defer cancel()
	vec, err := n.sync.index.vector()
	if err != nil {
		return res, nil, err
	}
	neg, err := negentropy.New(vec, protocol.SyncMaxMessage)
	if err != nil {
		return res, nil, err
	}
	s, err := n.host.NewStream(network.WithNoDial(ctx, "sync with a connected peer"), p, protocol.SyncProtocolID)
	if err != nil {
		return res, nil, err
	}
	defer func() {
		if err != nil {
			s.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := s.Scope().SetService(syncServiceName); err != nil {
		return res, nil, err
	}
	if err := s.Scope().ReserveMemory(syncMemory, network.ReservationPriorityAlways); err != nil {
		return res, nil, err
	}
	defer s.Scope().ReleaseMemory(syncMemory)
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	br := bufio.NewReader(s)
	msg, err := neg.Initiate()
	if err != nil {
		return res, nil, err
	}
	for {
		if res.Rounds++; res.Rounds > protocol.SyncMaxRounds {
			return res, nil, fmt.Errorf("sync: more than %d rounds", protocol.SyncMaxRounds)
		}
		res.BytesOut += len(msg)
		if err := writeSyncFrame(s, msg); err != nil {
			return res, nil, err
		}
		reply, err := protocol.ReadFrame(br, protocol.SyncMaxFrame)
		if err != nil {
			return res, nil, fmt.Errorf("sync: reading the answer: %w", err)
		}
		res.BytesIn += len(reply)
		next, have, needed, done, err := neg.ReconcileInitiator(reply)
		if err != nil {
			return res, nil, fmt.Errorf("sync: %w", err)
		}
		res.Have += len(have)
		need = append(need, needed...)
		if done {
			res.Need = len(need)
			return res, need, s.Close()
		}
		msg = next
	}
}

// handleSync answers a peer's session: one frame back per frame in.
func (n *Node) handleSync(s network.Stream) {
	if err := n.serveSync(s); err != nil {
		s.Reset()
		if !errors.Is(err, io.EOF) {
			n.log.Debug("sync session refused", "peer", s.Conn().RemotePeer().String(), "err", err)
		}
		return
	}
	s.Close()
}

func (n *Node) serveSync(s network.Stream) error {
	if err := s.Scope().SetService(syncServiceName); err != nil {
		return err
	}
	if err := s.Scope().ReserveMemory(syncMemory, network.ReservationPriorityAlways); err != nil {
		return err
	}
	defer s.Scope().ReleaseMemory(syncMemory)
	s.SetDeadline(time.Now().Add(syncSessionTime))
	vec, err := n.sync.index.vector()
	if err != nil {
		return err
	}
	neg, err := negentropy.New(vec, protocol.SyncMaxMessage)
	if err != nil {
		return err
	}
	br := bufio.NewReader(s)
	for rounds := 0; ; rounds++ {
		if rounds > protocol.SyncMaxRounds {
			return fmt.Errorf("more than %d rounds", protocol.SyncMaxRounds)
		}
		frame, err := protocol.ReadFrame(br, protocol.SyncMaxFrame)
		if errors.Is(err, io.EOF) && rounds > 0 {
			return nil // the initiator is done
		}
		if err != nil {
			return err
		}
		reply, err := neg.Reconcile(frame)
		if err != nil {
			return err
		}
		if err := writeSyncFrame(s, reply); err != nil {
			return err
		}
	}
}

// handleSyncAll answers a sync-all request: the peer, which holds
// nothing, asks for the whole sync set. The answer is one frame per
// record, in (issued_at, CID) order, then the end of the stream.
func (n *Node) handleSyncAll(s network.Stream) {
	if err := n.sendAll(s); err != nil {
		s.Reset()
		n.log.Debug("sync-all refused", "peer", s.Conn().RemotePeer().String(), "err", err)
		return
	}
	s.Close()
}

func (n *Node) sendAll(s network.Stream) error {
	if err := s.Scope().SetService(syncServiceName); err != nil {
		return err
	}
	s.SetDeadline(time.Now().Add(syncSessionTime))
	// The request is the stream itself: the asker writes nothing.
	if b, err := readAll(s, 0); err != nil || len(b) > 0 {
		return fmt.Errorf("a sync-all request with a body")
	}
	w := bufio.NewWriterSize(s, 64<<10)
	var frame []byte
	err := n.store.SyncItems(func(_ int64, c cid.Cid) error {
		b, err := n.store.GetBytes(c)
		if err != nil {
			return err
		}
		frame = protocol.AppendFrame(frame[:0], b)
		_, err = w.Write(frame)
		return err
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

// syncAll asks p for its whole sync set and ingests every record it
// sends: for a node that holds nothing, reconciling would only send it
// every ID, which it would then send back to ask for the records.
func (n *Node) syncAll(ctx context.Context, p peer.ID) (res SyncResult, err error) {
	ctx, cancel := context.WithTimeout(ctx, syncSessionTime)
	defer cancel()
	s, err := n.host.NewStream(network.WithNoDial(ctx, "sync with a connected peer"), p, protocol.SyncAllProtocolID)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			s.Reset()
		}
	}()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := s.Scope().SetService(syncServiceName); err != nil {
		return res, err
	}
	if err := s.Scope().ReserveMemory(syncMemory, network.ReservationPriorityAlways); err != nil {
		return res, err
	}
	defer s.Scope().ReleaseMemory(syncMemory)
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
	if err := s.CloseWrite(); err != nil {
		return res, err
	}
	res.Fetched, res.BytesIn, err = n.receiveAll(ctx, bufio.NewReader(s))
	res.Rounds, res.Need = 1, res.Fetched
	if err != nil {
		return res, err
	}
	return res, s.Close()
}

// receiveAll ingests every record the peer sends, until the end of the
// stream.
func (n *Node) receiveAll(ctx context.Context, br *bufio.Reader) (accepted, wire int, err error) {
	recs := make(chan *protocol.Record, 4*syncFetchChunk)
	received := 0
	done := make(chan int, 1)
	go func() { done <- n.ingestAll(ctx, recs) }()
	for {
		frame, ferr := protocol.ReadFrame(br, protocol.MaxRecordSize)
		if errors.Is(ferr, io.EOF) {
			break
		}
		if ferr != nil {
			err = fmt.Errorf("sync: reading records: %w", ferr)
			break
		}
		wire += protocol.FrameLen(len(frame))
		if received++; received%(16*syncFetchChunk) == 0 {
			n.log.Info("sync: catching up", "records", received, "bytes", wire)
		}
		r, derr := protocol.Decode(frame)
		if derr != nil {
			err = fmt.Errorf("sync: a record from the peer: %w", derr)
			break
		}
		recs <- r
	}
	close(recs)
	accepted = <-done
	if received > 16*syncFetchChunk {
		n.log.Info("sync: caught up", "records", received, "accepted", accepted)
	}
	if err == nil {
		err = ctx.Err()
	}
	return accepted, wire, err
}

// ingestAll ingests records from recs like gossip, many at a time so that
// the store's group commit batches (signature checks are bounded to the
// cores anyway); records that wait for an accreditation or a reference
// that comes later are parked. It returns how many were accepted.
func (n *Node) ingestAll(ctx context.Context, recs <-chan *protocol.Record) int {
	var ok atomic.Int64
	var workers sync.WaitGroup
	for w := 0; w < syncIngestWorkers; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := range recs {
				_, err := n.ingestCounted(ctx, r, SourceFetch)
				switch code := protocol.CodeOf(err); {
				case err == nil:
					ok.Add(1)
				case code == protocol.CodeUnauthorizedIssuer || code == protocol.CodeUnknownReference:
					n.parked.park(r, n.cfg.Now())
				}
			}
		}()
	}
	workers.Wait()
	n.parked.due()
	return int(ok.Load())
}

func writeSyncFrame(w io.Writer, b []byte) error {
	_, err := w.Write(protocol.AppendFrame(make([]byte, 0, len(b)+protocol.MaxVarintLen), b))
	return err
}

// fetchNeeded fetches from p the records this node lacks and ingests them
// like gossip, several at a time while the next chunk downloads. Records
// that wait for an accreditation or a reference that comes later in the
// same catch-up are parked and accepted when it arrives.
func (n *Node) fetchNeeded(ctx context.Context, p peer.ID, need []negentropy.ID) (accepted, wire int, err error) {
	recs := make(chan *protocol.Record, 4*syncFetchChunk)
	ingested := make(chan int, 1)
	go func() { ingested <- n.ingestAll(ctx, recs) }()
	done := 0
	for start := 0; start < len(need) && err == nil; start += syncFetchChunk {
		chunk := need[start:min(start+syncFetchChunk, len(need))]
		cids := make([]cid.Cid, len(chunk))
		for i, id := range chunk {
			cids[i] = protocol.RecordIDOf(id)
		}
		got, ferr := n.askPeer(ctx, p, cids)
		req, _ := protocol.EncodeFetchRequest(cids)
		wire += protocol.FrameLen(len(req)) + (len(cids)-len(got))*protocol.FrameLen(1)
		// Oldest first: accreditations tend to come before what they
		// authorise.
		batch := make([]*protocol.Record, 0, len(got))
		for _, r := range got {
			batch = append(batch, r)
			wire += protocol.FrameLen(1 + len(r.Bytes()))
		}
		sort.Slice(batch, func(i, j int) bool { return batch[i].IssuedAt() < batch[j].IssuedAt() })
		for _, r := range batch {
			recs <- r
		}
		if ferr != nil {
			err = fmt.Errorf("sync: fetching from %s: %w", p, ferr)
		}
		if done += len(chunk); done%(16*syncFetchChunk) == 0 {
			n.log.Info("sync: catching up", "peer", p.String(), "fetched", done, "of", len(need))
		}
	}
	close(recs)
	accepted = <-ingested
	if len(need) > 100 {
		n.log.Info("sync: caught up", "peer", p.String(), "accepted", accepted, "asked", len(need))
	}
	if err == nil {
		err = ctx.Err()
	}
	return accepted, wire, err
}
