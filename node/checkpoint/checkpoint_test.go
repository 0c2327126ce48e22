package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"golang.org/x/mod/sumdb/note"

	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
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

// TestHeldAfterARestore: over a store restored from a backup the service
// signs nothing new (its latest is the backup's) until Resume; Resume
// takes the peers' larger checkpoint only when the log has that tree,
// clears the store's restore mark, and signing goes on from there.
func TestHeldAfterARestore(t *testing.T) {
	src, err := store.Open(store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	key, id := nodetest.Key(t)
	authKey, _ := nodetest.Key(t)
	nodetest.Put(t, src, nodetest.Consent(t, authKey, "a"), nodetest.Consent(t, authKey, "b"))
	c, err := checkpoint.New(checkpoint.Config{Store: src, Key: key, Federation: fed, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	var backup bytes.Buffer
	if _, err := src.Backup(context.Background(), &backup); err != nil {
		t.Fatal(err)
	}
	// The source goes on: a checkpoint of 4 records its peers witnessed.
	more := []*protocol.Record{nodetest.Consent(t, authKey, "c"), nodetest.Consent(t, authKey, "d")}
	nodetest.Put(t, src, more...)
	c, err = checkpoint.New(checkpoint.Config{Store: src, Key: key, Federation: fed, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	peers, err := c.Sign()
	c.Close()
	src.Close()
	if err != nil || peers.Size != 4 {
		t.Fatalf("the source's checkpoint: %+v, %v", peers, err)
	}

	st := restoredStore(t, backup.Bytes())
	c, err = checkpoint.New(checkpoint.Config{Store: st, Key: key, Federation: fed, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Held() {
		t.Fatal("not held over a restored store")
	}
	if sc, err := c.Latest(); err != nil || sc.Size != 2 {
		t.Fatalf("Latest: %+v, %v; want the backup's checkpoint of 2", sc, err)
	}
	other := nodetest.Consent(t, authKey, "another-order")
	nodetest.Put(t, st, other)
	if _, err := c.Sign(); !errors.Is(err, service.ErrSigningHeld) {
		t.Fatalf("Sign while held: %v", err)
	}
	// The log took another third record than the source: the peers'
	// checkpoint of 4 is not a tree of it.
	nodetest.Put(t, st, more[1])
	if err := c.Resume(&peers); !errors.Is(err, store.ErrCheckpointMismatch) || !c.Held() {
		t.Fatalf("Resume on a diverged log: %v (held %v)", err, c.Held())
	}
	if _, ok, _ := st.Restored(); !ok {
		t.Fatal("the restore mark went with a failed Resume")
	}
	// Over a log that took the same records in the same order, it resumes.
	st2 := restoredStore(t, backup.Bytes())
	nodetest.Put(t, st2, more...)
	c2, err := checkpoint.New(checkpoint.Config{Store: st2, Key: key, Federation: fed, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Resume(&peers); err != nil || c2.Held() || c2.LatestSize() != 4 {
		t.Fatalf("Resume: %v (held %v, latest %d)", err, c2.Held(), c2.LatestSize())
	}
	if _, ok, _ := st2.Restored(); ok {
		t.Fatal("the restore mark is still there after Resume")
	}
	nodetest.Put(t, st2, nodetest.Consent(t, authKey, "e"))
	next, err := c2.Sign()
	if err != nil || next.Size != 5 {
		t.Fatalf("Sign after Resume: %+v, %v", next, err)
	}
	if _, err := protocol.OpenCheckpoint(next.Note, fed, id); err != nil {
		t.Fatal(err)
	}
}

// restoredStore restores backup into a new directory and opens it.
func restoredStore(t *testing.T, backup []byte) *store.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := store.Restore(dir, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
