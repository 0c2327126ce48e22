package gossip

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ingester answers err, or accepts a record once.
type ingester struct {
	mu      sync.Mutex
	err     error
	got     map[string]bool
	refused []string
	from    peer.ID // the peer of the last record
}

func (i *ingester) Forward(_ context.Context, r *protocol.Record, from peer.ID) (service.Accepted, bool, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.from = from
	if i.err != nil {
		return service.Accepted{}, false, i.err
	}
	isNew := !i.got[r.CID().KeyString()]
	i.got[r.CID().KeyString()] = true
	return service.Accepted{CID: r.CID(), New: isNew}, false, nil
}

func (i *ingester) Refused(_ service.Source, code string) {
	i.mu.Lock()
	i.refused = append(i.refused, code)
	i.mu.Unlock()
}

func (i *ingester) has(r *protocol.Record) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.got[r.CID().KeyString()]
}

func start(t *testing.T, h host.Host, in *ingester) *Service {
	t.Helper()
	s, err := New(Config{Host: h, Federation: "gossip-test", Ingest: in, Outbox: NewOutbox(),
		IsMember: func(peer.ID) bool { return true }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestOutboxSpreads: a record committed with the outbox's mark reaches
// the other node's ingest; one without it is not published.
func TestOutboxSpreads(t *testing.T) {
	hosts := nodetest.Apart(t, 2)
	ins := []*ingester{{got: map[string]bool{}}, {got: map[string]bool{}}}
	a, b := start(t, hosts[0], ins[0]), start(t, hosts[1], ins[1])
	nodetest.Connect(t, hosts...)
	nodetest.Eventually(t, 10*time.Second, "the two nodes to see each other on the topic", func() bool {
		return len(a.Peers()) == 1 && len(b.Peers()) == 1
	})
	fed := nodetest.NewFed(t, "gossip-test")
	_, id1 := nodetest.Key(t)
	_, id2 := nodetest.Key(t)
	marked, unmarked := fed.Accredit(t, id1, protocol.RoleController), fed.Accredit(t, id2, protocol.RoleController)
	a.cfg.Outbox.Expect(marked)
	a.cfg.Outbox.Committed([]*protocol.Record{unmarked, marked})
	nodetest.Eventually(t, 10*time.Second, "the marked record to arrive", func() bool { return ins[1].has(marked) })
	if ins[1].has(unmarked) {
		t.Error("a record not marked for gossip was published")
	}
}

// TestJudge: the validator's answers (package doc).
func TestJudge(t *testing.T) {
	h := nodetest.Hosts(t, 1)[0]
	in := &ingester{got: map[string]bool{}}
	s := start(t, h, in)
	fed := nodetest.NewFed(t, "gossip-test")
	_, id := nodetest.Key(t)
	acc := fed.Accredit(t, id, protocol.RoleController)
	regKey, _ := nodetest.Key(t)
	red := nodetest.Sign(t, regKey, &protocol.Incident{Ref: "r", Jurisdiction: "DE", Severity: protocol.SeverityHigh,
		Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
		DetectedAt: time.Now().UnixMilli(), Summary: "s", Recipients: []string{"DE"}})
	ctx := context.Background()
	_, sender := nodetest.Key(t)
	for _, tc := range []struct {
		name   string
		data   []byte
		err    error
		result pubsub.ValidationResult
		reason string
	}{
		{"new", acc.Bytes(), nil, pubsub.ValidationAccept, "accepted"},
		{"duplicate", acc.Bytes(), nil, pubsub.ValidationIgnore, "duplicate"},
		{"garbage", []byte{0xa0}, nil, pubsub.ValidationReject, "malformed"},
		{"red", red.Bytes(), nil, pubsub.ValidationReject, "not_gossiped"},
		{"bad signature", acc.Bytes(), &protocol.Error{Code: protocol.CodeBadSignature}, pubsub.ValidationReject, "bad_signature"},
		{"waits for its issuer", acc.Bytes(), &protocol.Error{Code: protocol.CodeUnauthorizedIssuer}, pubsub.ValidationIgnore, "unauthorized_issuer"},
		{"stale or ahead", acc.Bytes(), &protocol.Error{Code: protocol.CodeClockSkew}, pubsub.ValidationIgnore, "clock_skew"},
		{"closing", acc.Bytes(), service.ErrClosed, pubsub.ValidationIgnore, "closing"},
		{"store failed", acc.Bytes(), errors.New("disk"), pubsub.ValidationIgnore, "error"},
	} {
		in.err = tc.err
		in.from = ""
		res, reason := s.judge(ctx, sender, tc.data)
		if res != tc.result || reason != tc.reason {
			t.Errorf("%s: %v %s, want %v %s", tc.name, res, reason, tc.result, tc.reason)
		}
		if reachesIngest := tc.reason != "malformed" && tc.reason != "not_gossiped"; reachesIngest && in.from != sender {
			t.Errorf("%s: ingest was told the record came from %q, want the sending peer %s (parking counts against it)", tc.name, in.from, sender)
		}
	}
	if len(in.refused) != 2 {
		t.Errorf("refusals counted before ingest: %v, want malformed and not_gossiped", in.refused)
	}
}

// TestInspectReportsGraylistedAfterTheCopy: a peer below the threshold is
// reported at every inspection, newly only the first time, and when it is
// reported the copy the gate reads already says it is graylisted (so a
// connection closed then is not let in again).
func TestInspectReportsGraylistedAfterTheCopy(t *testing.T) {
	_, bad := nodetest.Key(t)
	_, good := nodetest.Key(t)
	var s *scores
	type report struct {
		p                 peer.ID
		newly, graylisted bool
	}
	var got []report
	s = &scores{onGraylist: func(p peer.ID, _ float64, newly bool) {
		v, _ := s.score(p)
		got = append(got, report{p, newly, v < graylistThreshold})
	}}
	s.inspect(map[peer.ID]float64{bad: graylistThreshold - 1, good: 0})
	s.inspect(map[peer.ID]float64{bad: graylistThreshold - 5, good: 0})
	s.inspect(map[peer.ID]float64{bad: 0, good: 0})
	s.inspect(map[peer.ID]float64{bad: graylistThreshold - 1})
	want := []report{{bad, true, true}, {bad, false, true}, {bad, true, true}}
	if !slices.Equal(got, want) {
		t.Fatalf("reports %+v, want %+v", got, want)
	}
}
