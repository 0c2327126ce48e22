package node_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	mh "github.com/multiformats/go-multihash"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// startDiskNet is startNet with stores on disk, so that a member can Stop
// and Restart with its records.
func startDiskNet(t *testing.T, nodes int) *testnet.Net {
	t.Helper()
	// No sync: these tests are about what only fetch can bring.
	tn, err := testnet.Start(testnet.Options{Nodes: nodes, API: true, NoSync: true})
	if err != nil {
		t.Fatalf("testnet: %v", err)
	}
	t.Cleanup(func() {
		if err := tn.Close(); err != nil {
			t.Errorf("testnet close: %v", err)
		}
	})
	if err := tn.WaitConnected(testCtx(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	return tn
}

// whileStopped stops m, runs fn, then restarts m and waits for the full
// mesh again. Records the other nodes accept meanwhile reach m only if it
// asks for them: gossip delivered them to no one, and gossipsub never
// offers past messages (IHAVE) to direct peers, which founding nodes are.
func whileStopped(t *testing.T, tn *testnet.Net, m *testnet.Member, fn func()) {
	t.Helper()
	if err := m.Stop(); err != nil {
		t.Fatalf("stop node %d: %v", m.Index, err)
	}
	fn()
	if err := m.Restart(); err != nil {
		t.Fatalf("restart node %d: %v", m.Index, err)
	}
	if err := tn.WaitConnected(testCtx(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
}

// fetchMetric is a fetch counter of m with one label.
func fetchMetric(t *testing.T, m *testnet.Member, name, label, value string) float64 {
	t.Helper()
	return metricValue(t, m.Registry(), name, map[string]string{label: value})
}

// accreditedHost is a libp2p host outside the testnet whose key j's
// authority accredits as a node (so the gate lets it in), connected to the
// members given once every node holds the accreditation.
func accreditedHost(t *testing.T, tn *testnet.Net, j string, to ...*testnet.Member) host.Host {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	key, id := newKey(t)
	acc, err := tn.Accredit(ctx, j, id, "test node of "+j, protocol.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, acc.CID()); err != nil {
		t.Fatal(err)
	}
	h := newOutsideHost(t, key)
	for _, m := range to {
		if err := dial(ctx, h, m); err != nil {
			t.Fatalf("accredited host cannot connect to node %d: %v", m.Index, err)
		}
		eventually(t, 10*time.Second, "the node to see the accredited host", func() bool { return connected(m.Host(), id) })
	}
	return h
}

// fetchFrame is one frame of the fetch wire format: an unsigned varint length,
// then body.
func fetchFrame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// fetchRequest is a request frame for cids, built from the wire format's
// definition rather than the node's encoder.
func fetchRequest(t *testing.T, cids ...cid.Cid) []byte {
	t.Helper()
	list := make([][]byte, len(cids))
	for i, c := range cids {
		list[i] = c.Bytes()
	}
	body, err := cbor.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return fetchFrame(body)
}

// fetchAnswer is one response frame: a status, and a record for status 0.
type fetchAnswer struct {
	status byte
	record []byte
}

func parseAnswers(t *testing.T, b []byte) []fetchAnswer {
	t.Helper()
	var out []fetchAnswer
	for len(b) > 0 {
		size, k := binary.Uvarint(b)
		if k <= 0 || size == 0 || uint64(len(b)-k) < size {
			t.Fatalf("malformed response frames: % x", b)
		}
		f := b[k : k+int(size)]
		out = append(out, fetchAnswer{status: f[0], record: f[1:]})
		b = b[k+int(size):]
	}
	return out
}

// rawFetch opens a fetch stream from h to m, writes raw, closes its side
// for writing and reads the answer to its end. The error is the read's: nil
// when the server closed the stream, a reset when it refused.
func rawFetch(t *testing.T, h host.Host, m *testnet.Member, raw []byte) ([]byte, error) {
	t.Helper()
	s, err := h.NewStream(testCtx(t, 10*time.Second), m.ID(), protocol.FetchProtocolID)
	if err != nil {
		t.Fatalf("open a fetch stream to node %d: %v", m.Index, err)
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	// The server may reset before reading it all; the read says how it
	// ended.
	s.Write(raw)
	s.CloseWrite()
	return io.ReadAll(s)
}

func revocationOf(target cid.Cid) *protocol.Revocation {
	return &protocol.Revocation{Target: protocol.LinkTo(target), Reason: "test", EffectiveAt: time.Now().UnixMilli()}
}

// TestFetchRecordHeldByOnePeer: a node that was down while a record was
// accepted elsewhere gets it by asking, stores it, and answers a second
// Fetch from its store without asking again.
func TestFetchRecordHeldByOnePeer(t *testing.T) {
	tn := startDiskNet(t, 2)
	holder, asker := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 20*time.Second)
	var rec *protocol.Record
	whileStopped(t, tn, asker, func() {
		rec = freshAccreditation(t, tn, "DE", "held by one node")
		if err := tn.Submit(ctx, holder, rec); err != nil {
			t.Fatal(err)
		}
	})
	if holds(t, asker.Node, rec.CID()) {
		t.Fatal("the restarted node holds the record before asking for it")
	}

	got, err := asker.Services().Fetch.Fetch(ctx, rec.CID())
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if r := got[rec.CID()]; r == nil || !bytes.Equal(r.Bytes(), rec.Bytes()) {
		t.Fatalf("Fetch returned %v, want the record", got)
	}
	if !holds(t, asker.Node, rec.CID()) {
		t.Fatal("the fetched record is not stored")
	}
	if n := metricValue(t, asker.Registry(), "entente_ingest_total", map[string]string{"source": "fetch", "result": "accepted"}); n != 1 {
		t.Errorf("ingest_total{source=fetch,result=accepted} = %v, want 1", n)
	}
	if n := fetchMetric(t, holder, "entente_fetch_records_served_total", "status", "record"); n != 1 {
		t.Errorf("the holder served %v records, want 1", n)
	}

	// Held now: a second Fetch does not go to the network.
	served := fetchMetric(t, holder, "entente_fetch_requests_served_total", "result", "ok")
	if got, err := asker.Services().Fetch.Fetch(ctx, rec.CID()); err != nil || got[rec.CID()] == nil {
		t.Fatalf("second Fetch: %v, %v", got, err)
	}
	if n := fetchMetric(t, holder, "entente_fetch_requests_served_total", "result", "ok"); n != served {
		t.Errorf("a record already held was asked for again (%v requests served, was %v)", n, served)
	}
}

// TestFetchFollowsReferences: a fetched record whose authorisation needs a
// record the node lacks has that one fetched first, to a bounded depth.
func TestFetchFollowsReferences(t *testing.T) {
	tn := startDiskNet(t, 2)
	holder, asker := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 30*time.Second)
	regulator, err := tn.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, regulator.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}

	var target, revoke *protocol.Record
	var chain []*protocol.Record // each notice follows the one before
	whileStopped(t, tn, asker, func() {
		target = freshAccreditation(t, tn, "DE", "revoked while the asker was down")
		revoke = mustSign(t, tn.Authorities["DE"], revocationOf(target.CID()))
		for i := range 10 {
			body := incident("DE", protocol.TLPAmber)
			body.Summary = fmt.Sprintf("notice %d", i)
			if i > 0 {
				body.Follows = protocol.LinkPtr(chain[i-1].CID())
			}
			chain = append(chain, mustSign(t, regulator.Key, body))
		}
		for _, r := range append([]*protocol.Record{target, revoke}, chain...) {
			if err := tn.Submit(ctx, holder, r); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("revocation brings its target", func(t *testing.T) {
		got, err := asker.Services().Fetch.Fetch(ctx, revoke.CID())
		if err != nil {
			t.Fatal(err)
		}
		if got[revoke.CID()] == nil {
			t.Fatal("the revocation was not fetched")
		}
		if !holds(t, asker.Node, target.CID()) {
			t.Fatal("the revocation's target was not fetched")
		}
	})

	t.Run("depth is bounded", func(t *testing.T) {
		// The last notice is 9 links from the first: one more than Fetch
		// follows, so none of the chain can be stored.
		last := chain[len(chain)-1]
		got, err := asker.Services().Fetch.Fetch(ctx, last.CID())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Fatalf("fetched %d records of a chain too deep to follow", len(got))
		}
		for i, r := range chain {
			if holds(t, asker.Node, r.CID()) {
				t.Fatalf("notice %d is stored, though the chain was too deep to authorise", i)
			}
		}
		// With its first two notices held, the rest is within reach.
		if got, err := asker.Services().Fetch.Fetch(ctx, chain[1].CID()); err != nil || got[chain[1].CID()] == nil {
			t.Fatalf("Fetch(notice 1): %v, %v", got, err)
		}
		if got, err := asker.Services().Fetch.Fetch(ctx, last.CID()); err != nil || got[last.CID()] == nil {
			t.Fatalf("Fetch(last notice) once the chain is within reach: %v, %v", got, err)
		}
		for i, r := range chain {
			if !holds(t, asker.Node, r.CID()) {
				t.Errorf("notice %d is not stored", i)
			}
		}
	})
}

// TestFetchUnknownCID: a record no one holds is simply absent from the
// answer; every peer answers "not held" once and no stream is reset.
func TestFetchUnknownCID(t *testing.T) {
	tn := startNet(t, 3)
	asker := tn.Nodes[0]
	ctx := testCtx(t, 20*time.Second)
	missing := protocol.RecordCID([]byte("a record no one holds"))
	got, err := asker.Services().Fetch.Fetch(ctx, missing)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("Fetch returned %v for a record no one holds", got)
	}
	if n := fetchMetric(t, asker, "entente_fetch_records_total", "result", "not_found"); n != 1 {
		t.Errorf("fetch_records_total{result=not_found} = %v, want 1", n)
	}
	for _, m := range tn.Nodes[1:] {
		if n := fetchMetric(t, m, "entente_fetch_records_served_total", "status", "not_held"); n != 1 {
			t.Errorf("node %d answered not_held %v times, want 1", m.Index, n)
		}
		if n := fetchMetric(t, m, "entente_fetch_requests_served_total", "result", "reset"); n != 0 {
			t.Errorf("node %d reset %v fetch streams", m.Index, n)
		}
	}

	t.Run("not a record ID", func(t *testing.T) {
		sum, _ := mh.Sum([]byte("x"), mh.SHA2_256, -1)
		for _, c := range []cid.Cid{cid.Undef, cid.NewCidV0(sum), cid.NewCidV1(cid.Raw, sum)} {
			if _, err := asker.Services().Fetch.Fetch(ctx, c); err == nil {
				t.Errorf("Fetch(%v) succeeded; want an error for a CID that is not a record ID", c)
			}
		}
	})
	t.Run("context ended", func(t *testing.T) {
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := asker.Services().Fetch.Fetch(done, missing); !errors.Is(err, context.Canceled) {
			t.Errorf("Fetch with an ended context: %v, want context.Canceled", err)
		}
	})
}

// TestFetchDistrustsPeers: a peer that answers with another record's
// bytes, or breaks the wire format, is not believed and nothing it sent is
// stored; the same peer answering honestly is.
func TestFetchDistrustsPeers(t *testing.T) {
	tn := startNet(t, 2)
	asker := tn.Nodes[1]
	ctx := testCtx(t, 20*time.Second)
	decoy := freshAccreditation(t, tn, "DE", "the decoy") // valid, held by no node
	wanted := freshAccreditation(t, tn, "DE", "the record asked for")

	// The peer, accredited as a node and connected to the asker only,
	// answers each request it gets with the next answer given to it.
	answers := make(chan []byte, 1)
	asked := make(chan [][]byte, 1)
	peer := accreditedHost(t, tn, "DE", asker)
	peer.SetStreamHandler(protocol.FetchProtocolID, func(s network.Stream) {
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(s)
		size, err := binary.ReadUvarint(r)
		if err != nil || size > 4<<10 {
			s.Reset()
			return
		}
		body := make([]byte, size)
		var list [][]byte
		if _, err := io.ReadFull(r, body); err != nil || cbor.Unmarshal(body, &list) != nil {
			s.Reset()
			return
		}
		asked <- list
		s.Write(<-answers)
	})

	for _, tc := range []struct {
		name   string
		answer []byte
		honest bool
	}{
		{"another record", fetchFrame(append([]byte{0}, decoy.Bytes()...)), false},
		{"bytes that are no record", fetchFrame(append([]byte{0}, "not a record"...)), false},
		{"unknown status", fetchFrame(append([]byte{2}, wanted.Bytes()...)), false},
		{"not held, with bytes", fetchFrame(append([]byte{1}, wanted.Bytes()...)), false},
		{"frame over the limit", binary.AppendUvarint(nil, protocol.MaxRecordSize+2), false},
		{"truncated frame", fetchFrame(append([]byte{0}, wanted.Bytes()...))[:100], false},
		{"the record", fetchFrame(append([]byte{0}, wanted.Bytes()...)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answers <- tc.answer
			got, err := asker.Services().Fetch.Fetch(ctx, wanted.CID())
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			// The founding node was asked first and lacks it: the peer
			// must have been asked too.
			select {
			case list := <-asked:
				if len(list) != 1 || !bytes.Equal(list[0], wanted.CID().Bytes()) {
					t.Fatalf("the peer was asked for %x, want the one CID", list)
				}
			default:
				t.Fatal("the accredited peer was never asked")
			}
			if tc.honest {
				if got[wanted.CID()] == nil || !holds(t, asker.Node, wanted.CID()) {
					t.Fatalf("the honest answer was not taken: %v", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("Fetch returned %v; want nothing", got)
			}
			for _, r := range []*protocol.Record{decoy, wanted} {
				if holds(t, asker.Node, r.CID()) {
					t.Fatalf("the asker stores %s", r.CID())
				}
			}
		})
	}
	if n := fetchMetric(t, asker, "entente_fetch_records_total", "result", "mismatch"); n != 2 {
		t.Errorf("fetch_records_total{result=mismatch} = %v, want 2 (another record, bytes that are no record)", n)
	}
}

// TestFetchRedIncident: a TLP:RED incident goes only to nodes of its
// recipients' jurisdictions, founding or accredited; everyone else is told
// "not held".
func TestFetchRedIncident(t *testing.T) {
	tn := startNet(t, 3)
	ctx := testCtx(t, 20*time.Second)
	de, fr, br := tn.NodeOf("DE"), tn.NodeOf("FR"), tn.NodeOf("BR")
	regulator, err := tn.NewParty(ctx, "FR", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, regulator.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	red := mustSign(t, regulator.Key, incident("FR", protocol.TLPRed, "DE"))
	newAPIClient(t, fr).submit(red)

	got, err := de.Services().Fetch.Fetch(ctx, red.CID())
	if err != nil || got[red.CID()] == nil {
		t.Fatalf("the DE node, a recipient, could not fetch the incident: %v, %v", got, err)
	}
	if !holds(t, de.Node, red.CID()) {
		t.Fatal("the DE node does not store the incident it fetched")
	}

	// BR asks both FR and DE, which holds it now: both refuse.
	got, err = br.Services().Fetch.Fetch(ctx, red.CID())
	if err != nil || len(got) != 0 {
		t.Fatalf("the BR node fetched %v, %v; want nothing", got, err)
	}
	if holds(t, br.Node, red.CID()) {
		t.Fatal("the BR node holds the incident")
	}
	for _, m := range []*testnet.Member{fr, de} {
		if n := fetchMetric(t, m, "entente_fetch_records_served_total", "status", "withheld"); n != 1 {
			t.Errorf("node %s withheld the incident %v times, want 1", m.Jurisdiction(), n)
		}
	}
	// What DE fetched it does not gossip.
	if n := gossipResult(t, br, "not_gossiped"); n != 0 {
		t.Errorf("the BR node was offered the incident over gossip")
	}

	// Accredited nodes, not only founding ones: a DE node gets it, a BR
	// node gets "not held", the same answer as for a record FR lacks.
	req := fetchRequest(t, red.CID())
	deNode := accreditedHost(t, tn, "DE", fr)
	resp, err := rawFetch(t, deNode, fr, req)
	if err != nil {
		t.Fatalf("accredited DE node: %v", err)
	}
	if a := parseAnswers(t, resp); len(a) != 1 || a[0].status != 0 || !bytes.Equal(a[0].record, red.Bytes()) {
		t.Fatalf("accredited DE node got %+v, want the incident", a)
	}
	brNode := accreditedHost(t, tn, "BR", fr)
	withheld, err := rawFetch(t, brNode, fr, req)
	if err != nil {
		t.Fatalf("accredited BR node: %v", err)
	}
	notHeld, err := rawFetch(t, brNode, fr, fetchRequest(t, protocol.RecordCID([]byte("not held"))))
	if err != nil {
		t.Fatalf("accredited BR node: %v", err)
	}
	if !bytes.Equal(withheld, notHeld) || !bytes.Equal(withheld, fetchFrame([]byte{1})) {
		t.Fatalf("accredited BR node got % x for the incident and % x for a record not held; want both 01 01", withheld, notHeld)
	}
}

// TestMissingReferenceIsFetched: a record submitted over the API or
// received over gossip whose target only a peer holds is accepted once the
// target is fetched; a target no one holds is still refused.
func TestMissingReferenceIsFetched(t *testing.T) {
	tn := startDiskNet(t, 2)
	holder, asker := tn.Nodes[0], tn.Nodes[1]
	ctx := testCtx(t, 20*time.Second)
	var viaAPI, viaGossip *protocol.Record
	whileStopped(t, tn, asker, func() {
		viaAPI = freshAccreditation(t, tn, "DE", "revoked over the API")
		viaGossip = freshAccreditation(t, tn, "DE", "revoked over gossip")
		for _, r := range []*protocol.Record{viaAPI, viaGossip} {
			if err := tn.Submit(ctx, holder, r); err != nil {
				t.Fatal(err)
			}
		}
	})
	api := newAPIClient(t, asker)

	t.Run("api", func(t *testing.T) {
		api.submit(mustSign(t, tn.Authorities["DE"], revocationOf(viaAPI.CID()))) // 201
		if !holds(t, asker.Node, viaAPI.CID()) {
			t.Fatal("the revocation's target was not stored")
		}
	})
	t.Run("gossip", func(t *testing.T) {
		rev := mustSign(t, tn.Authorities["DE"], revocationOf(viaGossip.CID()))
		if err := tn.Submit(ctx, holder, rev); err != nil {
			t.Fatal(err)
		}
		if err := asker.Services().Ingest.WaitRecord(ctx, rev.CID()); err != nil {
			t.Fatalf("the gossiped revocation was not accepted: %v", err)
		}
		if !holds(t, asker.Node, viaGossip.CID()) {
			t.Fatal("the revocation's target was not stored")
		}
	})
	t.Run("no one holds the target", func(t *testing.T) {
		nowhere := freshAccreditation(t, tn, "DE", "never submitted")
		before := stateOf(asker.Node)
		resp := api.postRecord(mustSign(t, tn.Authorities["DE"], revocationOf(nowhere.CID())).Bytes())
		wantAPIError(t, resp, http.StatusUnprocessableEntity, string(protocol.CodeUnknownReference))
		if !stateOf(asker.Node).equal(before) {
			t.Error("a refused record changed the store")
		}
	})
}

// TestFetchServerRefusesBadRequests: every malformed request gets its
// stream reset, and the server goes on answering good ones.
func TestFetchServerRefusesBadRequests(t *testing.T) {
	tn := startNet(t, 1)
	server := tn.Nodes[0]
	client := accreditedHost(t, tn, "DE", server)
	held := freshAccreditation(t, tn, "DE", "held")
	if err := tn.Submit(testCtx(t, 10*time.Second), server, held); err != nil {
		t.Fatal(err)
	}

	mustCBOR := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	c := held.CID().Bytes()
	tooMany := make([][]byte, 65)
	for i := range tooMany {
		tooMany[i] = c
	}
	good := mustCBOR([][]byte{c})
	longHead := append([]byte{0x98, 0x01, 0x58, byte(len(c))}, c...) // array of 1 with a 2-byte head
	cases := []struct {
		name string
		raw  []byte
	}{
		{"nothing", nil},
		{"length over 4 KiB", binary.AppendUvarint(nil, 4<<10+1)},
		{"length of a megabyte", binary.AppendUvarint(nil, 1<<20)},
		// A good request but for its length, padded with a zero byte.
		{"non-minimal length", append([]byte{byte(len(good)) | 0x80, 0x00}, good...)},
		{"empty frame", []byte{0x00}},
		{"truncated frame", append(binary.AppendUvarint(nil, 100), 0x81)},
		{"not CBOR", fetchFrame([]byte("not cbor at all"))},
		{"a map", fetchFrame(mustCBOR(map[string]int{"a": 1}))},
		{"no CIDs", fetchFrame(mustCBOR([][]byte{}))},
		{"65 CIDs", fetchFrame(mustCBOR(tooMany))},
		{"not a CID", fetchFrame(mustCBOR([][]byte{[]byte("not a cid")}))},
		{"CID with trailing bytes", fetchFrame(mustCBOR([][]byte{append(bytes.Clone(c), 0)}))},
		{"text string", fetchFrame(mustCBOR([]string{string(c)}))},
		{"non-canonical head", fetchFrame(longHead)},
		{"trailing bytes", fetchFrame(append(bytes.Clone(good), 0x00))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := rawFetch(t, client, server, tc.raw)
			if !errors.Is(err, network.ErrReset) {
				t.Fatalf("answer % x, read error %v; want the stream reset", resp, err)
			}
		})
	}

	resp, err := rawFetch(t, client, server, fetchRequest(t, held.CID(), protocol.RecordCID([]byte("not held"))))
	if err != nil {
		t.Fatalf("a good request after the bad ones: %v", err)
	}
	a := parseAnswers(t, resp)
	if len(a) != 2 || a[0].status != 0 || !bytes.Equal(a[0].record, held.Bytes()) || a[1].status != 1 || len(a[1].record) != 0 {
		t.Fatalf("answers %+v; want the record, then not held", a)
	}
	if n := fetchMetric(t, server, "entente_fetch_requests_served_total", "result", "reset"); int(n) != len(cases) {
		t.Errorf("requests reset: %v, want %d", n, len(cases))
	}
}
