package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// heldStore is a store whose puts wait for release, or fail with fail.
type heldStore struct {
	ingest.Store
	entered chan struct{}
	release chan struct{}
	fail    error
}

func (h *heldStore) PutNew(ctx context.Context, r *protocol.Record, absent store.Absence) (store.PutResult, error) {
	h.entered <- struct{}{}
	<-h.release
	if h.fail != nil {
		return store.PutResult{}, h.fail
	}
	return h.Store.PutNew(ctx, r, absent)
}

func newHeldWorld(t *testing.T, fail error) (*world, *heldStore) {
	var held *heldStore
	w := newWorldWith(t, func(cfg *ingest.Config) {
		held = &heldStore{Store: cfg.Store, entered: make(chan struct{}, 16), release: make(chan struct{}), fail: fail}
		cfg.Store = held
	})
	return w, held
}

// TestForwardAnswersBeforeTheStore: gossip's validator gets its answer
// once the checks pass, while the record is still being stored; nothing
// sees the record, and none of its effects run, until it is durable.
func TestForwardAnswersBeforeTheStore(t *testing.T) {
	w, held := newHeldWorld(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, from := nodetest.Key(t)
	_, id := nodetest.Key(t)
	acc := w.fed.Accredit(t, id, protocol.RoleController)

	got, parked, err := w.p.Forward(ctx, acc, from)
	if err != nil || parked || !got.New || got.Seq != 0 || !got.CID.Equals(acc.CID()) {
		t.Fatalf("Forward = %+v, parked %v, %v; want New at once, no seq yet", got, parked, err)
	}
	<-held.entered // the put is under way, and held
	if ok, _ := w.store.Has(acc.CID()); ok {
		t.Fatal("the store shows a record whose put has not returned")
	}
	w.mu.Lock()
	early := len(w.accepted)
	w.mu.Unlock()
	if early != 0 {
		t.Fatal("OnAccept ran before the record was durable")
	}
	close(held.release)
	if err := w.p.WaitRecord(ctx, acc.CID()); err != nil {
		t.Fatal(err)
	}
	nodetest.Eventually(t, 5*time.Second, "OnAccept and the metric", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.accepted) == 1 &&
			w.metric(t, "entente_ingest_total", map[string]string{"source": "gossip", "result": "accepted"}) == 1
	})

	// The same record again is a duplicate; a bad signature is refused,
	// before any put.
	if got, _, err := w.p.Forward(ctx, acc, from); err != nil || got.New {
		t.Fatalf("again: %+v %v; want a duplicate", got, err)
	}
	bad := append([]byte(nil), w.fed.Accredit(t, from, protocol.RoleNode).Bytes()...)
	bad[len(bad)-1] ^= 1
	r, err := protocol.Decode(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.p.Forward(ctx, r, from); protocol.CodeOf(err) != protocol.CodeBadSignature {
		t.Fatalf("altered signature: %v", err)
	}
	// A consent whose issuer is not yet accredited is parked, not stored.
	key, _ := nodetest.Key(t)
	if _, parked, err := w.p.Forward(ctx, nodetest.Consent(t, key, "research"), from); !parked || protocol.CodeOf(err) != protocol.CodeUnauthorizedIssuer {
		t.Fatalf("unauthorised consent: parked %v, %v", parked, err)
	}
	select {
	case <-held.entered:
		t.Fatal("a refused or parked record reached the store")
	default:
	}
}

// TestForwardedRecordThatFailsToStore: a record forwarded and then not
// stored is counted as an error and has no effects.
func TestForwardedRecordThatFailsToStore(t *testing.T) {
	w, held := newHeldWorld(t, errors.New("disk full"))
	close(held.release)
	_, from := nodetest.Key(t)
	_, id := nodetest.Key(t)
	acc := w.fed.Accredit(t, id, protocol.RoleController)
	if got, _, err := w.p.Forward(context.Background(), acc, from); err != nil || !got.New {
		t.Fatalf("Forward = %+v, %v", got, err)
	}
	nodetest.Eventually(t, 5*time.Second, "the failure counted", func() bool {
		return w.metric(t, "entente_ingest_total", map[string]string{"source": string(service.SourceGossip), "result": "error"}) == 1
	})
	w.p.Close() // waits for the store's goroutine
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.accepted) != 0 {
		t.Fatalf("OnAccept ran for a record that was not stored: %v", w.accepted)
	}
	if ok, _ := w.store.Has(acc.CID()); ok {
		t.Fatal("the store holds it")
	}
}
