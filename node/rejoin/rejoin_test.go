package rejoin

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a restored node's neighbours, faked: its checkpoints (held),
// its peers' answers, its log.
type world struct {
	self   peer.ID
	signer *protocol.CheckpointSigner
	cps    *checkpoints
	wit    *witness
	log    *fakeLog
	peers  []peer.ID
	up     map[peer.ID]bool
	now    time.Time // the service's clock
}

type checkpoints struct {
	mu      sync.Mutex
	held    bool
	resumed []*protocol.SignedCheckpoint
	signer  *protocol.CheckpointSigner
	fail    error
}

func (c *checkpoints) Held() bool                         { c.mu.Lock(); defer c.mu.Unlock(); return c.held }
func (c *checkpoints) Signer() *protocol.CheckpointSigner { return c.signer }
func (c *checkpoints) Resume(sc *protocol.SignedCheckpoint) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.resumed = append(c.resumed, sc)
	c.held = false
	return nil
}

type witness struct {
	mu      sync.Mutex
	answers map[peer.ID][]byte
	asked   map[peer.ID]int
}

func (w *witness) HeldBy(_ context.Context, p, _ peer.ID) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked[p]++
	msg, ok := w.answers[p]
	if !ok {
		return nil, errors.New("no answer")
	}
	return msg, nil
}

// fakeLog is a log whose tree of size n has root roots[n].
type fakeLog struct {
	size  uint64
	roots map[uint64]tlog.Hash
}

func (l *fakeLog) TreeHead() (store.Tree, error) {
	return store.Tree{Size: l.size, Root: l.roots[l.size]}, nil
}
func (l *fakeLog) TreeHash(n uint64) (tlog.Hash, error) {
	if n > l.size {
		return tlog.Hash{}, errors.New("beyond the log")
	}
	return l.roots[n], nil
}

func root(n uint64, fork byte) tlog.Hash { return tlog.Hash{byte(n), fork} }

func newWorld(t *testing.T, peers int, logSize uint64) *world {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := peer.IDFromPrivateKey(key)
	signer, err := protocol.NewCheckpointSigner("rejoin-test", key)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{self: self, signer: signer, cps: &checkpoints{held: true, signer: signer},
		wit: &witness{answers: map[peer.ID][]byte{}, asked: map[peer.ID]int{}},
		log: &fakeLog{size: logSize, roots: map[uint64]tlog.Hash{}}, up: map[peer.ID]bool{}}
	for n := uint64(0); n <= 100; n++ {
		w.log.roots[n] = root(n, 0)
	}
	for range peers {
		k, _, _ := crypto.GenerateEd25519Key(nil)
		id, _ := peer.IDFromPrivateKey(k)
		w.peers = append(w.peers, id)
		w.up[id] = true
	}
	return w
}

// holds makes peer i answer with this node's checkpoint of size n and
// the given root.
func (w *world) holds(t *testing.T, i int, n uint64, r tlog.Hash) {
	t.Helper()
	sc, err := w.signer.Sign(protocol.LogCheckpoint{Origin: w.signer.Name(), Size: n, Root: r})
	if err != nil {
		t.Fatal(err)
	}
	w.wit.answers[w.peers[i]] = sc.Note
}

// start makes the service without its loop: tests drive step.
func (w *world) service(t *testing.T) *Service {
	t.Helper()
	s := &Service{cfg: Config{Self: w.self, Checkpoints: w.cps, Witness: w.wit, Log: w.log,
		Members:    func() []peer.ID { return append([]peer.ID{w.self}, w.peers...) },
		Connected:  func(p peer.ID) bool { return w.up[p] },
		StallAfter: time.Minute, Now: func() time.Time { return w.now }}, answered: map[peer.ID]uint64{}}
	s.cfg.Logger = newTestLogger(t)
	s.log = s.cfg.Logger
	return s
}

func TestResumesWhenEveryPeerHoldsNothing(t *testing.T) {
	w := newWorld(t, 2, 10)
	w.wit.answers[w.peers[0]] = nil
	w.wit.answers[w.peers[1]] = nil
	s := w.service(t)
	if !s.step(context.Background()) || w.cps.held || len(w.cps.resumed) != 1 || w.cps.resumed[0] != nil {
		t.Fatalf("held %v, resumed %v", w.cps.held, w.cps.resumed)
	}
	if st := s.Status(); st.Held {
		t.Fatalf("status after resuming: %+v", st)
	}
}

func TestResumesWithNoOtherNode(t *testing.T) {
	w := newWorld(t, 0, 3)
	if s := w.service(t); !s.step(context.Background()) || w.cps.held {
		t.Fatal("a node with no other member node stays held")
	}
}

// TestWaitsForEveryMember: a member that is not connected, or does not
// answer, keeps signing held; it is asked once connected; a peer that
// answered is not asked again.
func TestWaitsForEveryMember(t *testing.T) {
	w := newWorld(t, 3, 10)
	w.holds(t, 0, 8, root(8, 0))
	w.wit.answers[w.peers[1]] = nil
	w.up[w.peers[2]] = false
	s := w.service(t)
	ctx := context.Background()
	if s.step(ctx) || !w.cps.held {
		t.Fatal("resumed without hearing from a member that is down")
	}
	st := s.Status()
	if !st.Held || len(st.Waiting) != 1 || st.Waiting[0] != w.peers[2].String() || st.Target != 8 {
		t.Fatalf("status %+v", st)
	}
	w.up[w.peers[2]] = true // connected, but it does not answer
	if s.step(ctx) || !w.cps.held {
		t.Fatal("resumed without an answer")
	}
	w.holds(t, 2, 9, root(9, 0))
	if !s.step(ctx) || w.cps.held || w.cps.resumed[0].Size != 9 {
		t.Fatalf("held %v, resumed %+v", w.cps.held, w.cps.resumed)
	}
	if w.wit.asked[w.peers[0]] != 1 || w.wit.asked[w.peers[2]] != 2 {
		t.Errorf("asked %v", w.wit.asked)
	}
}

// TestWaitsForTheLog: the peers hold a checkpoint beyond the restored
// log: held until the log reaches it (with the same tree), then resumed
// from the peers' checkpoint.
func TestWaitsForTheLog(t *testing.T) {
	w := newWorld(t, 2, 5)
	w.holds(t, 0, 12, root(12, 0))
	w.holds(t, 1, 7, root(7, 0))
	s := w.service(t)
	ctx := context.Background()
	for size := uint64(5); size < 12; size += 3 {
		w.log.size = size
		if s.step(ctx) || !w.cps.held {
			t.Fatalf("resumed at log size %d, below the peers' 12", size)
		}
		if st := s.Status(); st.Target != 12 || len(st.Waiting) != 0 || st.Diverged {
			t.Fatalf("status %+v", st)
		}
	}
	w.log.size = 13
	if !s.step(ctx) || w.cps.held || w.cps.resumed[0].Size != 12 || w.cps.resumed[0].Root != root(12, 0) {
		t.Fatalf("held %v, resumed %+v", w.cps.held, w.cps.resumed)
	}
}

// TestStalled: a log below the peers' size that does not grow for
// StallAfter is said to have stalled, with what to do; it is not given up
// (the log may still grow), and growing clears it.
func TestStalled(t *testing.T) {
	w := newWorld(t, 1, 9)
	start := time.Unix(1_800_000_000, 0)
	w.holds(t, 0, 11, root(11, 0))
	s := w.service(t)
	ctx := context.Background()
	for _, after := range []time.Duration{0, 30 * time.Second, 59 * time.Second} {
		w.now = start.Add(after)
		if s.step(ctx) {
			t.Fatal("the service gave up on a log below the peers' size")
		}
		if st := s.Status(); st.Stalled || !st.Held {
			t.Fatalf("stalled before a minute without growth: %+v", st)
		}
	}
	w.now = start.Add(time.Minute) // a minute since the log was last seen at 9
	if s.step(ctx) || !w.cps.held {
		t.Fatal("resumed, or gave up, on a stalled log")
	}
	st := s.Status()
	if !st.Held || !st.Stalled || st.Diverged || st.Target != 11 || !strings.Contains(st.Reason, "new node key") || !strings.Contains(st.Reason, "Replacing a node") {
		t.Fatalf("status of a stalled log: %+v", st)
	}
	w.log.size = 10 // a record arrives: not stalled any more
	if s.step(ctx); s.Status().Stalled {
		t.Fatal("still stalled after the log grew")
	}
	w.now = w.now.Add(time.Minute)
	if s.step(ctx); !s.Status().Stalled {
		t.Fatal("not stalled a minute after the log last grew")
	}
	w.log.size = 12 // it reaches the peers' size with their tree
	if !s.step(ctx) || w.cps.held {
		t.Fatalf("not resumed once the log reached the peers' tree: %+v", s.Status())
	}
}

// TestDiverged: the log reached the size the peers hold with another
// tree: held for good, and said so.
func TestDiverged(t *testing.T) {
	w := newWorld(t, 1, 12)
	w.holds(t, 0, 12, root(12, 1))
	s := w.service(t)
	if !s.step(context.Background()) {
		t.Fatal("the service goes on after a divergence")
	}
	if !w.cps.held || len(w.cps.resumed) != 0 {
		t.Fatalf("resumed on a diverged log: %+v", w.cps.resumed)
	}
	if st := s.Status(); !st.Held || !st.Diverged || st.Target != 12 {
		t.Fatalf("status %+v", st)
	}
}

// TestRefusesAnotherKeysNote: an answer not signed by the node's key (a
// checkpoint of another node's) is not an answer (asked again later).
func TestRefusesAnotherKeysNote(t *testing.T) {
	w := newWorld(t, 1, 3)
	other := newWorld(t, 0, 0)
	sc, err := other.signer.Sign(protocol.LogCheckpoint{Origin: other.signer.Name(), Size: 2, Root: root(2, 0)})
	if err != nil {
		t.Fatal(err)
	}
	w.wit.answers[w.peers[0]] = sc.Note
	s := w.service(t)
	if s.step(context.Background()) || !w.cps.held {
		t.Fatal("resumed on a note another key signed")
	}
	if st := s.Status(); len(st.Waiting) != 1 {
		t.Fatalf("status %+v", st)
	}
}

// TestRunResumes: the service's own loop resumes and stops; Close waits.
func TestRunResumes(t *testing.T) {
	w := newWorld(t, 1, 4)
	w.holds(t, 0, 4, root(4, 0))
	s, err := New(Config{Self: w.self, Checkpoints: w.cps, Witness: w.wit, Log: w.log,
		Members: func() []peer.ID { return w.peers }, Connected: func(peer.ID) bool { return true }, Logger: newTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	select {
	case <-s.Done():
	case <-t.Context().Done():
		t.Fatal("not resumed")
	}
	if w.cps.Held() || s.Status().Held {
		t.Fatal("done, but held")
	}
}

func newTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
