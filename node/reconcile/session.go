package reconcile

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/protocol/negentropy"
)

// open opens a session stream of proto to p, which must be connected.
func (s *Service) open(ctx context.Context, p peer.ID, proto libp2pprotocol.ID) (*service.Stream, error) {
	return service.OpenStream(network.WithNoDial(ctx, "sync with a connected peer"), s.cfg.Host, p, proto, serviceName, sessionMemory)
}

// reconcile runs negentropy with p as the initiator and returns the
// records this node lacks.
func (s *Service) reconcile(ctx context.Context, p peer.ID) (res Result, need []cid.Cid, err error) {
	ctx, cancel := context.WithTimeout(ctx, sessionTime)
	defer cancel()
	vec, err := s.cfg.Index.vector()
	if err != nil {
		return res, nil, err
	}
	neg, err := negentropy.New(vec, protocol.SyncMaxMessage)
	if err != nil {
		return res, nil, err
	}
	st, err := s.open(ctx, p, protocol.SyncProtocolID)
	if err != nil {
		return res, nil, err
	}
	defer func() { err = st.Finish(err) }()
	br := bufio.NewReader(st)
	msg, err := neg.Initiate()
	if err != nil {
		return res, nil, err
	}
	for {
		if res.Rounds++; res.Rounds > protocol.SyncMaxRounds {
			return res, nil, fmt.Errorf("sync: more than %d rounds", protocol.SyncMaxRounds)
		}
		res.BytesOut += len(msg)
		if _, err := st.Write(protocol.AppendFrame(nil, msg)); err != nil {
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
		for _, id := range needed {
			need = append(need, protocol.RecordIDOf(id))
		}
		if done {
			res.Need = len(need)
			return res, need, nil
		}
		msg = next
	}
}

// fetchNeeded fetches from p the records this node lacks and ingests them
// like gossip, several at a time while the next chunk downloads. Records
// that wait for an accreditation or a reference that comes later in the
// same catch-up are parked and accepted when it arrives.
func (s *Service) fetchNeeded(ctx context.Context, p peer.ID, need []cid.Cid) (accepted, wire int, err error) {
	recs := make(chan *protocol.Record, 4*fetchChunk)
	ingested := make(chan int, 1)
	go func() { ingested <- s.ingestAll(ctx, p, recs) }()
	done := 0
	for start := 0; start < len(need) && err == nil; start += fetchChunk {
		cids := need[start:min(start+fetchChunk, len(need))]
		got, ferr := s.cfg.Download.FetchFrom(ctx, p, cids)
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
		if done += len(cids); done%(16*fetchChunk) == 0 {
			s.log.Info("sync: catching up", "peer", p.String(), "fetched", done, "of", len(need))
		}
	}
	close(recs)
	accepted = <-ingested
	if len(need) > 100 {
		s.log.Info("sync: caught up", "peer", p.String(), "accepted", accepted, "asked", len(need))
	}
	if err == nil {
		err = ctx.Err()
	}
	return accepted, wire, err
}

// syncAll asks p for its whole sync set and ingests every record it
// sends: for a node that holds nothing, reconciling would only send it
// every ID, which it would then send back to ask for the records.
func (s *Service) syncAll(ctx context.Context, p peer.ID) (res Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, sessionTime)
	defer cancel()
	st, err := s.open(ctx, p, protocol.SyncAllProtocolID)
	if err != nil {
		return res, err
	}
	defer func() { err = st.Finish(err) }()
	if err := st.CloseWrite(); err != nil {
		return res, err
	}
	res.Fetched, res.BytesIn, err = s.receiveAll(ctx, p, bufio.NewReader(st))
	res.Rounds, res.Need = 1, res.Fetched
	return res, err
}

// receiveAll ingests every record the peer sends, until the end of the
// stream.
func (s *Service) receiveAll(ctx context.Context, p peer.ID, br *bufio.Reader) (accepted, wire int, err error) {
	recs := make(chan *protocol.Record, 4*fetchChunk)
	received := 0
	done := make(chan int, 1)
	go func() { done <- s.ingestAll(ctx, p, recs) }()
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
		if received++; received%(16*fetchChunk) == 0 {
			s.log.Info("sync: catching up", "records", received, "bytes", wire)
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
	if received > 16*fetchChunk {
		s.log.Info("sync: caught up", "records", received, "accepted", accepted)
	}
	if err == nil {
		err = ctx.Err()
	}
	return accepted, wire, err
}

// ingestAll ingests records from recs, many at a time so that the store's
// group commit batches (signature checks are bounded to the cores
// anyway); records that wait for an accreditation or a reference that
// comes later are parked, as p's. It returns how many were accepted.
func (s *Service) ingestAll(ctx context.Context, p peer.ID, recs <-chan *protocol.Record) int {
	var ok atomic.Int64
	var workers sync.WaitGroup
	for w := 0; w < ingestWorkers; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for r := range recs {
				if _, _, err := s.cfg.Ingest.IngestOrParkFrom(ctx, r, service.SourceFetch, p); err == nil {
					ok.Add(1)
				}
			}
		}()
	}
	workers.Wait()
	return int(ok.Load())
}
