package node_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// gossipResult is entente_gossip_messages_total{result} on a member.
func gossipResult(t *testing.T, m *testnet.Member, result string) float64 {
	t.Helper()
	return metricValue(t, m.Registry(), "entente_gossip_messages_total", map[string]string{"result": result})
}

// joinAsNode gives the test a gossip publisher inside the federation: a
// libp2p host whose key DE's authority accredits as a node (the gate lets
// nothing else in), with gossipsub set up as the nodes' (no pubsub
// signatures, the record's CID as message ID, flood publish). It connects
// to the members given, only, and returns the records topic once they are
// seen on it.
func joinAsNode(t *testing.T, tn *testnet.Net, to ...*testnet.Member) *pubsub.Topic {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	key, id := newKey(t)
	acc, err := tn.Accredit(ctx, "DE", id, "test publisher", protocol.RoleNode)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, acc.CID()); err != nil {
		t.Fatal(err)
	}
	h := newOutsideHost(t, key)
	psCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before the host's Close: cleanups are LIFO
	ps, err := pubsub.NewGossipSub(psCtx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(func(m *pb.Message) string { return protocol.RecordCID(m.GetData()).KeyString() }),
		pubsub.WithFloodPublish(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(protocol.RecordsTopic(tn.Federation.Name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topic.Close() })
	for _, m := range to {
		if err := dial(ctx, h, m); err != nil {
			t.Fatalf("accredited publisher cannot connect to node %d: %v", m.Index, err)
		}
	}
	eventually(t, 10*time.Second, "the publisher to see the nodes on the topic", func() bool {
		onTopic := topic.ListPeers()
		for _, m := range to {
			if !slices.Contains(onTopic, m.ID()) {
				return false
			}
		}
		return true
	})
	return topic
}

// waitForwarding publishes fresh valid records through topic until one
// reaches every node. A node forwards a gossiped record only to its mesh,
// which gossipsub forms at a heartbeat after peers connect; a record that
// arrives before that is stored but forwarded to no one. Until this
// returns, "not forwarded" would prove nothing.
func waitForwarding(t *testing.T, tn *testnet.Net, topic *pubsub.Topic) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		probe := freshAccreditation(t, tn, "DE", fmt.Sprintf("probe %d", i))
		if err := topic.Publish(testCtx(t, 5*time.Second), probe.Bytes()); err != nil {
			t.Fatalf("publish: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := tn.WaitAll(ctx, probe.CID())
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gossip is not forwarded to every node: %v", err)
		}
	}
}

// TestGossipRefusals publishes records no node may keep straight onto the
// topic, from an accredited member connected to node 0 only, so that
// nodes 1 and 2 can learn of anything only through node 0's forwarding.
func TestGossipRefusals(t *testing.T) {
	tn := startNet(t, 3)
	ctx := testCtx(t, 20*time.Second)
	first := tn.Nodes[0]
	regulator, err := tn.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, regulator.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	topic := joinAsNode(t, tn, first)
	waitForwarding(t, tn, topic)
	acceptedBefore := gossipResult(t, first, "accepted")
	publish := func(data []byte) {
		t.Helper()
		if err := topic.Publish(ctx, data); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}

	stranger, _ := newKey(t)
	badSig := flipSignature(t, freshAccreditation(t, tn, "DE", "bad signature"))
	malformed := []byte("not a record")
	red := mustSign(t, regulator.Key, incident("DE", protocol.TLPRed, "FR"))
	unauthorized := mustSign(t, stranger, consent("DE"))
	refused := map[string][]byte{
		"bad_signature":       badSig,
		"malformed":           malformed,
		"not_gossiped":        red.Bytes(),
		"unauthorized_issuer": unauthorized.Bytes(),
	}
	results := []string{"bad_signature", "malformed", "not_gossiped", "unauthorized_issuer"}
	for _, res := range results {
		publish(refused[res])
	}
	marker := freshAccreditation(t, tn, "DE", "marker")
	publish(marker.Bytes())

	// Node 0 validates messages concurrently, so the marker's arrival does
	// not prove the others were judged: wait until node 0 counted each
	// refusal, which happens after it decided.
	eventually(t, 10*time.Second, "node 0 to judge every refused message", func() bool {
		for _, res := range results {
			if gossipResult(t, first, res) < 1 {
				return false
			}
		}
		return true
	})
	// Had node 0 forwarded a refused message, it would have done so right
	// after its verdict, on the same ordered streams to nodes 1 and 2 that
	// carry a second marker, which node 0 forwards only after receiving,
	// checking and storing it. (Were that ordering ever lost, this test
	// could miss a forward; it cannot fail for a node that behaves.)
	marker2 := freshAccreditation(t, tn, "DE", "marker after the verdicts")
	publish(marker2.Bytes())
	if err := tn.WaitAll(ctx, marker.CID(), marker2.CID()); err != nil {
		t.Fatalf("valid records did not spread: %v", err)
	}

	for _, m := range tn.Nodes {
		for _, res := range results {
			if c := protocol.RecordCID(refused[res]); holds(t, m.Node, c) {
				t.Errorf("node %d holds the %s record", m.Index, res)
			}
		}
		if m == first {
			continue
		}
		for _, res := range results {
			if n := gossipResult(t, m, res); n != 0 {
				t.Errorf("node %d was offered %v %s message(s): node 0 forwarded what it refused", m.Index, n, res)
			}
		}
	}
	if n := gossipResult(t, first, "accepted") - acceptedBefore; n < 2 {
		t.Errorf("node 0 counted %v more accepted gossip messages, want the 2 markers", n)
	}

	// The federation still works: a record posted to another node spreads.
	after := freshAccreditation(t, tn, "FR", "after the refusals")
	newAPIClient(t, tn.Nodes[1]).submit(after)
	if err := tn.WaitAll(ctx, after.CID()); err != nil {
		t.Fatalf("a record posted after the refusals did not spread: %v", err)
	}
}

// TestRedIncidentStaysHome: a TLP:RED incident submitted over HTTP is kept
// by the node it was given to and not gossiped; an amber one from the same
// node, submitted after it, spreads.
func TestRedIncidentStaysHome(t *testing.T) {
	tn := startNet(t, 3)
	ctx := testCtx(t, 20*time.Second)
	de := tn.NodeOf("DE")
	regulator, err := tn.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.WaitAll(ctx, regulator.Accreditation.CID()); err != nil {
		t.Fatal(err)
	}
	c := newAPIClient(t, de)

	// Addressed to DE alone, so no node but DE's may ever hold it, however
	// TLP:RED delivery to recipients comes to work.
	red := mustSign(t, regulator.Key, incident("DE", protocol.TLPRed, "DE"))
	c.submit(red)
	if !holds(t, de.Node, red.CID()) {
		t.Fatal("the node that took the TLP:RED incident does not hold it")
	}
	amber := mustSign(t, regulator.Key, incident("DE", protocol.TLPAmber))
	c.submit(amber)
	if err := tn.WaitAll(ctx, amber.CID()); err != nil {
		t.Fatalf("the amber incident did not spread: %v", err)
	}
	for _, m := range tn.Nodes {
		if m == de {
			continue
		}
		if holds(t, m.Node, red.CID()) {
			t.Errorf("node %d (%s) holds the TLP:RED incident", m.Index, m.Jurisdiction())
		}
		// Not offered at all: had DE published it, the node would have
		// refused it as not_gossiped.
		if n := gossipResult(t, m, "not_gossiped"); n != 0 {
			t.Errorf("node %d was offered the TLP:RED incident over gossip", m.Index)
		}
	}
	// And the node's API shows it to those who ask that node.
	if resp := c.get("/v1/records/"+red.CID().String(), ""); resp.status != http.StatusOK {
		t.Errorf("GET the red incident from its node: status %d", resp.status)
	}
}

// TestStatusListsPeers: in a running federation, status names each
// connected member and whether it is a founding node.
func TestStatusListsPeers(t *testing.T) {
	tn := startNet(t, 3)
	m := tn.Nodes[0]
	var st struct {
		Peers []struct {
			PeerID       string `json:"peer_id"`
			Jurisdiction string `json:"jurisdiction"`
			Founding     bool   `json:"founding"`
		} `json:"peers"`
	}
	decodeJSON(t, newAPIClient(t, m).get("/v1/status", "").body, &st)
	want := map[peer.ID]string{}
	for _, o := range tn.Nodes[1:] {
		want[o.ID()] = o.Jurisdiction()
	}
	if len(st.Peers) != len(want) {
		t.Fatalf("status lists %d peers, want %d: %+v", len(st.Peers), len(want), st.Peers)
	}
	for _, p := range st.Peers {
		id, _ := peer.Decode(p.PeerID)
		if j, ok := want[id]; !ok || p.Jurisdiction != j || !p.Founding {
			t.Errorf("peer %+v, want a founding node of %s", p, j)
		}
	}
}

// TestSubmittedRecordsGoOutOnGossip submits a burst of records on one
// node, each by two clients at once, and checks that every one reaches the
// other node over gossip (sync is off, so it cannot be what carried
// them): the outbox gossips the copy the store wrote,
// whichever client's it was, and pubsub's queues take the whole burst.
func TestSubmittedRecordsGoOutOnGossip(t *testing.T) {
	tn, err := testnet.Start(testnet.Options{Nodes: 2, InMemory: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	ctx := testCtx(t, 20*time.Second)
	if err := tn.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	from, to := tn.Nodes[0], tn.Nodes[1]
	for !slices.Contains(from.Services().Gossip.Peers(), to.ID()) {
		select {
		case <-ctx.Done():
			t.Fatal("the nodes never met on the topic")
		case <-time.After(10 * time.Millisecond):
		}
	}
	before := gossipResult(t, to, "accepted") + gossipResult(t, to, "duplicate")
	const n = 64
	recs, err := tn.SignAccreditations(from.Jurisdiction(), n)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2*n)
	for _, r := range recs {
		for range 2 {
			go func() {
				_, err := from.Services().Ingest.SubmitRecord(ctx, r)
				errs <- err
			}()
		}
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	cids := make([]cid.Cid, n)
	for i, r := range recs {
		cids[i] = r.CID()
	}
	if err := tn.WaitAll(ctx, cids...); err != nil {
		t.Fatal(err)
	}
	// The validator counts a message after storing its record.
	for {
		got := gossipResult(t, to, "accepted") + gossipResult(t, to, "duplicate") - before
		if got >= n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%v of the %d records reached the other node over gossip", got, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
