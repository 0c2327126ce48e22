package checkpoint_test

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"

	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const fed = "checkpoint-test"

func TestSignOncePerSize(t *testing.T) {
	st := nodetest.Store(t)
	key, id := nodetest.Key(t)
	c, err := checkpoint.New(checkpoint.Config{Store: st, Key: key, Federation: fed, Interval: time.Hour, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Latest(); !errors.Is(err, service.ErrEmptyLog) {
		t.Fatalf("an empty log: %v", err)
	}
	authKey, _ := nodetest.Key(t)
	nodetest.Put(t, st, nodetest.Consent(t, authKey, "a"), nodetest.Consent(t, authKey, "b"))
	first, err := c.Sign()
	if err != nil || first.Size != 2 {
		t.Fatalf("Sign: %+v %v", first, err)
	}
	again, err := c.Sign()
	if err != nil || string(again.Note) != string(first.Note) {
		t.Fatalf("a second Sign of the same log made another note: %v", err)
	}
	if _, err := protocol.OpenCheckpoint(first.Note, fed, id); err != nil {
		t.Fatalf("the note does not open as the node's: %v", err)
	}
	if c.LatestSize() != 2 {
		t.Errorf("LatestSize %d", c.LatestSize())
	}
}

// TestRestartKeepsTheCheckpoint: a new service over the same store serves
// the same note; one over a store whose log disagrees refuses to start.
func TestRestartKeepsTheCheckpoint(t *testing.T) {
	st := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	authKey, _ := nodetest.Key(t)
	nodetest.Put(t, st, nodetest.Consent(t, authKey, "a"))
	c, err := checkpoint.New(checkpoint.Config{Store: st, Key: key, Federation: fed})
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if _, err := c.Latest(); !errors.Is(err, service.ErrClosed) {
		t.Errorf("Latest after Close: %v", err)
	}
	c2, err := checkpoint.New(checkpoint.Config{Store: st, Key: key, Federation: fed})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := c2.Latest(); err != nil || string(got.Note) != string(first.Note) {
		t.Fatalf("after a restart: %v", err)
	}
}

// TestAddCosignature: a witness's cosignature of the latest checkpoint is
// kept; one of an older checkpoint is stale; a forged one is refused.
func TestAddCosignature(t *testing.T) {
	st := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	authKey, _ := nodetest.Key(t)
	c, err := checkpoint.New(checkpoint.Config{Store: st, Key: key, Federation: fed, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nodetest.Put(t, st, nodetest.Consent(t, authKey, "a"))
	old, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	wkey, wid := nodetest.Key(t)
	w, err := protocol.NewCheckpointSigner(fed, wkey)
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(sc protocol.SignedCheckpoint) []byte {
		nt, err := note.Open(sc.Note, note.VerifierList(c.Signer().Verifier()))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := w.Cosign(nt, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	staleMsg := cosign(old)
	nodetest.Put(t, st, nodetest.Consent(t, authKey, "b"))
	latest, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddCosignature(wid, staleMsg); !errors.Is(err, service.ErrStaleCosignature) {
		t.Errorf("a cosignature of an older checkpoint: %v", err)
	}
	if err := c.AddCosignature(wid, cosign(latest)); err != nil {
		t.Fatalf("AddCosignature: %v", err)
	}
	got, err := c.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := protocol.VerifyCosignature(got.Note, fed, wid); err != nil {
		t.Errorf("the latest note does not carry the cosignature: %v", err)
	}
	_, other := nodetest.Key(t)
	if err := c.AddCosignature(other, cosign(latest)); !errors.Is(err, protocol.ErrBadCosignature) {
		t.Errorf("the cosignature claimed by another witness: %v", err)
	}
}
