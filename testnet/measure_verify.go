package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// LoadRun is what one load of HTTP requests measured: the time taken and
// each request's latency.
type LoadRun struct {
	Elapsed   time.Duration
	Latencies []time.Duration
}

func (r *LoadRun) add(o LoadRun) {
	r.Elapsed += o.Elapsed
	r.Latencies = append(r.Latencies, o.Latencies...)
}

// Rate is requests per second.
func (r LoadRun) Rate() float64 { return float64(len(r.Latencies)) / r.Elapsed.Seconds() }

// Percentile is the p-th percentile latency (0 < p < 100).
func (r LoadRun) Percentile(p int) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// VerifyReading is what MeasureVerify found: single verifies, the bare
// handler and batches, taking turns.
type VerifyReading struct {
	Clients   int
	BatchSize int
	Verify    LoadRun // POST /v1/transfers/verify
	Bare      LoadRun // the bare handler (MeasureVerify)
	// BareBlock is the bare handler that also stores, with the receipt,
	// a decision block of the size of the world's (prepared beforehand):
	// the bytes a durable verdict must keep under DESIGN.md §4.
	BareBlock    LoadRun
	Batch        LoadRun // POST /v1/transfers/verify-batch, BatchSize requests a call
	BareCPU      time.Duration
	BareBlockCPU time.Duration
	VerifyCPU    time.Duration
	BatchCPU     time.Duration
}

// BatchRate is decisions per second in batches.
func (r VerifyReading) BatchRate() float64 { return r.Batch.Rate() * float64(r.BatchSize) }

// VerifyOverBare is single verify's rate over the bare handler's.
func (r VerifyReading) VerifyOverBare() float64 { return r.Verify.Rate() / r.Bare.Rate() }

// VerifyOverBareBlock is single verify's rate over the bare handler's
// that stores a decision block too.
func (r VerifyReading) VerifyOverBareBlock() float64 { return r.Verify.Rate() / r.BareBlock.Rate() }

// BatchOverSingle is the batch's decisions per second over single
// verify's.
func (r VerifyReading) BatchOverSingle() float64 { return r.BatchRate() / r.Verify.Rate() }

// batchClients is how many clients send batches at once.
var batchClients = 8

// verifyRounds is how many turns single verify, the bare handler and
// batches take: a shared machine's speed drifts by tens of percent over
// seconds.
const verifyRounds = 5

// MeasureVerify measures m's API (the net must run with API) on the
// world's transfer: requests single POSTs of /v1/transfers/verify from
// clients concurrent clients, against a bare handler in the same process
// that does the work a signed, durable verdict cannot avoid — the same
// HTTP and JSON (the request parsed as the API parses it, an answer of
// the same shape), the same store reads (the decision's evidence records
// and their backlinks), one Ed25519 signature and one group-committed
// durable write into m's store — without deciding; and batches of
// batchSize requests a call from 4 clients. The three take turns.
func MeasureVerify(ctx context.Context, w *TransferWorld, m *Member, requests, clients, batchSize int) (VerifyReading, error) {
	r := VerifyReading{Clients: clients, BatchSize: batchSize}
	if m.APIAddr() == "" {
		return r, errors.New("testnet: MeasureVerify needs a node with its API")
	}
	bodies := make([][]byte, batchSize)
	for i := range bodies {
		req := w.Request
		req.RetentionDays = int64(i%30) + 1 // requests that differ give decisions that differ
		body, err := req.JSON()
		if err != nil {
			return r, err
		}
		bodies[i] = body
	}
	bare, err := bareVerifyHandler(w, m, 0)
	if err != nil {
		return r, err
	}
	defer bare.Close()
	bareBlock, err := bareVerifyHandler(w, m, requests/verifyRounds*verifyRounds)
	if err != nil {
		return r, err
	}
	defer bareBlock.Close()
	raw := make([]json.RawMessage, len(bodies))
	for i, b := range bodies {
		raw[i] = b
	}
	batchBody, _ := json.Marshal(map[string]any{"requests": raw})
	calls := max(requests/batchSize, 4*verifyRounds)
	api := "http://" + m.APIAddr()
	for round := range verifyRounds {
		cpu0 := cpuTime()
		run, err := load(ctx, bare.URL, "", bodies, requests/verifyRounds, clients)
		if err != nil {
			return r, fmt.Errorf("bare handler: %w", err)
		}
		r.BareCPU += cpuTime() - cpu0
		r.Bare.add(run)
		cpu0 = cpuTime()
		if run, err = load(ctx, bareBlock.URL, "", bodies, requests/verifyRounds, clients); err != nil {
			return r, fmt.Errorf("bare handler with a block: %w", err)
		}
		r.BareBlockCPU += cpuTime() - cpu0
		r.BareBlock.add(run)
		cpu0 = cpuTime()
		if run, err = load(ctx, api+"/v1/transfers/verify", m.Token, bodies, requests/verifyRounds, clients); err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		r.VerifyCPU += cpuTime() - cpu0
		r.Verify.add(run)
		cpu0 = cpuTime()
		if run, err = load(ctx, api+"/v1/transfers/verify-batch", m.Token, [][]byte{batchBody}, calls/verifyRounds, batchClients); err != nil {
			return r, fmt.Errorf("verify-batch: %w", err)
		}
		r.BatchCPU += cpuTime() - cpu0
		r.Batch.add(run)
		progress(ctx, "verify", round+1, verifyRounds)
	}
	return r, nil
}

// bareVerifyHandler is MeasureVerify's baseline (see there); with blocks
// > 0 it stores, with each receipt, one of that many decision blocks
// like the world's decision's, encoded beforehand.
func bareVerifyHandler(w *TransferWorld, m *Member, blocks int) (*httptest.Server, error) {
	req := w.Request
	req.At = time.Now().UnixMilli()
	d, err := m.Services().Verify.Decide(req)
	if err != nil || !d.Allowed() {
		return nil, fmt.Errorf("testnet: the world's transfer: %v %+v", err, d)
	}
	answer := api.VerdictView{Verdict: d.Verdict}
	for _, c := range d.Checks {
		cv := api.CheckView{ID: c.ID, OK: c.OK, Detail: c.Detail}
		if c.Evidence != nil {
			cv.Evidence = c.Evidence.String()
		}
		answer.Checks = append(answer.Checks, cv)
	}
	key, err := config.GenerateKey()
	if err != nil {
		return nil, err
	}
	tree, err := m.Store().TreeHead()
	if err != nil {
		return nil, err
	}
	var encoded [][]byte
	var links []cid.Cid
	for i := range blocks {
		blk := d.Block(req)
		blk.Request.At = req.At + int64(i) // a block of its own for each request
		enc, c, err := blk.Encode()
		if err != nil {
			return nil, err
		}
		encoded, links = append(encoded, enc), append(links, c)
	}
	// The backlinks a decision reads: revocations, amendments and incident
	// follow-ups, never the receipts that pile up on a consent.
	kinds := []protocol.Kind{protocol.KindRevocation, protocol.KindConsent, protocol.KindIncident}
	var n atomic.Int64
	return httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		if _, err := protocol.ParseTransferRequestJSON(body); err != nil {
			http.Error(rw, err.Error(), 400)
			return
		}
		for _, e := range d.Evidence {
			if _, err := m.Store().Get(e.Cid); err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
			if _, err := m.Store().LinkedFrom(e.Cid, kinds...); err != nil {
				http.Error(rw, err.Error(), 500)
				return
			}
		}
		// One signature and one durable write: a receipt of a decision
		// named by a counter.
		i := n.Add(1)
		link := protocol.RecordCID(fmt.Appendf(nil, "bare %d", i))
		var stored []store.Block
		if blocks > 0 {
			k := int(i-1) % blocks
			link, stored = links[k], []store.Block{{Data: encoded[k], Request: &req}}
		}
		rec, err := protocol.SignOwned(key, time.Now().UnixMilli(), protocol.NewReceipt([]cid.Cid{link}, protocol.Checkpoint{Size: int64(tree.Size), Root: tree.Root[:]}))
		if err == nil {
			_, err = m.Store().PutReceipt(r.Context(), rec, stored)
		}
		if err != nil {
			http.Error(rw, err.Error(), 500)
			return
		}
		v := answer
		v.Receipt = rec.CID().String()
		rw.Header().Set("Content-Type", "application/json")
		json.NewEncoder(rw).Encode(v)
	})), nil
}

// load sends n POSTs from clients concurrent clients. Bodies are used in
// turn.
func load(ctx context.Context, url, token string, bodies [][]byte, n, clients int) (LoadRun, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n) && failed.Load() == nil; i = next.Add(1) - 1 {
				t0 := time.Now()
				if err := post(ctx, hc, url, token, bodies[i%int64(len(bodies))]); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		return LoadRun{}, *err
	}
	return LoadRun{Elapsed: time.Since(start), Latencies: lat}, nil
}

func post(ctx context.Context, hc *http.Client, url, token string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// LineageReading is what MeasureLineage found: the time per decision of
// the world's tier-1 transfer and of a tier-3 resale of it whose two
// ancestors the node holds, taking turns.
type LineageReading struct {
	Decisions      int
	Tier1, Tier3   time.Duration // Decide: the decision alone
	VTier1, VTier3 time.Duration // Verify: with the lineage walk, signature and write
}

// Tier3OverTier1 is a tier-3 decision's cost over a tier-1 decision's.
func (r LineageReading) Tier3OverTier1() float64 { return r.Tier3.Seconds() / r.Tier1.Seconds() }

// VerifyTier3OverTier1 is the same for Verify.
func (r LineageReading) VerifyTier3OverTier1() float64 {
	return r.VTier3.Seconds() / r.VTier1.Seconds()
}

// MeasureLineage has m sign the world's chain to tier 3 (TransferWorld.
// Resale), then decides the tier-1 transfer and the tier-3 resale in
// turns, decisions times each, in process: with Decide (the decision
// alone) and with Verify (signed and stored, one at a time).
func MeasureLineage(ctx context.Context, w *TransferWorld, m *Member, decisions int) (LineageReading, error) {
	r := LineageReading{Decisions: decisions}
	tier3, err := w.Resale(ctx, m, 3)
	if err != nil {
		return r, err
	}
	tier1 := w.Request
	svc := m.Services().Verify
	for _, req := range []protocol.TransferRequest{tier1, tier3} {
		if v, err := svc.Verify(ctx, req); err != nil || !v.Decision.Allowed() {
			return r, fmt.Errorf("testnet: tier %d: %v %+v", req.Tier, err, v)
		}
	}
	decide := func(req protocol.TransferRequest, n int) (time.Duration, error) {
		t0 := time.Now()
		for range n {
			if _, err := svc.Decide(req); err != nil {
				return 0, err
			}
		}
		return time.Since(t0), nil
	}
	verify := func(req protocol.TransferRequest, n int) (time.Duration, error) {
		t0 := time.Now()
		for range n {
			if _, err := svc.Verify(ctx, req); err != nil {
				return 0, err
			}
		}
		return time.Since(t0), nil
	}
	per := max(decisions/verifyRounds, 1)
	for round := range verifyRounds {
		for _, s := range []struct {
			into *time.Duration
			run  func(protocol.TransferRequest, int) (time.Duration, error)
			req  protocol.TransferRequest
			n    int
		}{{&r.Tier1, decide, tier1, per}, {&r.Tier3, decide, tier3, per}, {&r.VTier1, verify, tier1, per / 10}, {&r.VTier3, verify, tier3, per / 10}} {
			d, err := s.run(s.req, max(s.n, 1))
			if err != nil {
				return r, err
			}
			*s.into += d / time.Duration(max(s.n, 1))
		}
		progress(ctx, "lineage", round+1, verifyRounds)
	}
	for _, d := range []*time.Duration{&r.Tier1, &r.Tier3, &r.VTier1, &r.VTier3} {
		*d /= verifyRounds
	}
	return r, nil
}

// CallerReading is what MeasureCallers found: single verifies with the
// operator's token and with a granted controller's, taking turns.
type CallerReading struct {
	Operator, Controller LoadRun
}

// ControllerOverOperator is the controller's rate over the operator's:
// what resolving a granted token against its live accreditation and
// checking the sender cost.
func (r CallerReading) ControllerOverOperator() float64 {
	return r.Controller.Rate() / r.Operator.Rate()
}

// MeasureCallers grants the world's platform a controller token on m and
// sends the world's transfer to POST /v1/transfers/verify from clients
// concurrent clients, with the operator's token and with the platform's
// in turns, requests in all for each.
func MeasureCallers(ctx context.Context, w *TransferWorld, m *Member, requests, clients int) (CallerReading, error) {
	var r CallerReading
	if m.APIAddr() == "" {
		return r, errors.New("testnet: MeasureCallers needs a node with its API")
	}
	token, err := m.Grant(ctx, "bench-platform", protocol.RoleController, w.Platform.ID)
	if err != nil {
		return r, err
	}
	body, err := w.Request.JSON()
	if err != nil {
		return r, err
	}
	url := "http://" + m.APIAddr() + "/v1/transfers/verify"
	for range verifyRounds {
		for _, s := range []struct {
			into  *LoadRun
			token string
		}{{&r.Operator, m.Token}, {&r.Controller, token}} {
			run, err := load(ctx, url, s.token, [][]byte{body}, requests/verifyRounds, clients)
			if err != nil {
				return r, err
			}
			s.into.add(run)
		}
	}
	return r, nil
}
