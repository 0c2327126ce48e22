package ingest_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// clock is a settable clock for a pipeline.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func signAt(t *testing.T, key crypto.PrivKey, at time.Time, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := protocol.Sign(key, at.UnixMilli(), body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// accreditationAt is the federation's authority accrediting a new key,
// issued at at (valid from an hour before now for a year).
func (w *world) accreditationAt(t *testing.T, at time.Time) *protocol.Record {
	t.Helper()
	_, id := nodetest.Key(t)
	now := time.Now()
	return signAt(t, w.fed.Authority, at, &protocol.Accreditation{
		Subject: id.String(), Jurisdiction: "DE", Roles: []protocol.Role{protocol.RoleAuditor}, Name: "party",
		ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.AddDate(1, 0, 0).UnixMilli(),
	})
}

// TestFreshnessBySource: a record new from a client or gossip must lie in
// [now - max_record_age, now + 5 min]; sync and fetch, delivery, import and
// a parked retry take older ones; nothing takes one more than 5 minutes
// ahead. A record already held is not judged again.
func TestFreshnessBySource(t *testing.T) {
	c := newClock()
	w := newWorldWith(t, func(cfg *ingest.Config) { cfg.Now = c.now })
	ctx := context.Background()
	now := c.now()
	old, nearlyOld, ahead := now.Add(-11*time.Minute), now.Add(-9*time.Minute), now.Add(6*time.Minute)
	_, stranger := nodetest.Key(t)

	submit := func(r *protocol.Record) error { _, err := w.p.SubmitRecord(ctx, r); return err }
	importIt := func(r *protocol.Record) error { _, err := w.p.Import(ctx, r.Bytes()); return err }
	gossip := func(r *protocol.Record) error {
		_, parked, err := w.p.IngestOrParkFrom(ctx, r, service.SourceGossip, stranger)
		if parked {
			t.Errorf("%s from gossip was parked", r.CID())
		}
		return err
	}
	from := func(src service.Source) func(*protocol.Record) error {
		return func(r *protocol.Record) error { _, err := w.p.Ingest(ctx, r, src); return err }
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		in   func(*protocol.Record) error
		want protocol.Code
	}{
		{"api, 11 minutes old", old, submit, protocol.CodeClockSkew},
		{"api, 6 minutes ahead", ahead, submit, protocol.CodeClockSkew},
		{"api, 9 minutes old", nearlyOld, submit, ""},
		{"api, now", now, submit, ""},
		{"gossip, 11 minutes old", old, gossip, protocol.CodeClockSkew},
		{"gossip, 6 minutes ahead", ahead, gossip, protocol.CodeClockSkew},
		{"gossip, 9 minutes old", nearlyOld, gossip, ""},
		{"fetch and sync, 11 minutes old", old, from(service.SourceFetch), ""},
		{"delivery, 11 minutes old", old, from(service.SourceDeliver), ""},
		{"parked retry, 11 minutes old", old, from(service.SourceParked), ""},
		{"import, 11 minutes old", old, importIt, ""},
		{"import, a year old", now.AddDate(-1, 0, 0), importIt, ""},
		{"fetch, 6 minutes ahead", ahead, from(service.SourceFetch), protocol.CodeClockSkew},
		{"import, 6 minutes ahead", ahead, importIt, protocol.CodeClockSkew},
	} {
		r := w.accreditationAt(t, tc.at)
		err := tc.in(r)
		if got := protocol.CodeOf(err); got != tc.want || (tc.want == "" && err != nil) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			continue
		}
		if held, _ := w.store.Has(r.CID()); held != (tc.want == "") {
			t.Errorf("%s: held %v", tc.name, held)
		}
	}
	if n := w.metric(t, "entente_ingest_total", map[string]string{"source": "gossip", "result": "clock_skew"}); n != 2 {
		t.Errorf("gossip clock_skew counted %v times, want 2", n)
	}

	// Judged once: a stale record the node holds is answered as held, not
	// refused.
	held := w.accreditationAt(t, old)
	if _, err := w.p.Ingest(ctx, held, service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	if acc, err := w.p.SubmitRecord(ctx, held); err != nil || acc.New {
		t.Errorf("a held stale record submitted again: %+v %v, want held", acc, err)
	}
}

// TestImportNotGossiped: an imported record is stored but never marked for
// gossip; a submitted one is.
func TestImportNotGossiped(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	imported := w.accreditationAt(t, time.Now().Add(-time.Hour))
	submitted := w.accreditationAt(t, time.Now())
	if acc, err := w.p.Import(ctx, imported.Bytes()); err != nil || !acc.New {
		t.Fatalf("import: %+v %v", acc, err)
	}
	if acc, err := w.p.Submit(ctx, submitted.Bytes()); err != nil || !acc.New {
		t.Fatalf("submit: %+v %v", acc, err)
	}
	if slices.ContainsFunc(w.out.expect, imported.CID().Equals) {
		t.Error("an imported record was marked for gossip")
	}
	if !slices.ContainsFunc(w.out.expect, submitted.CID().Equals) {
		t.Error("a submitted record was not marked for gossip")
	}
	if _, err := w.p.Import(ctx, []byte{0xa0}); protocol.CodeOf(err) != protocol.CodeMalformed {
		t.Errorf("importing garbage: %v", err)
	}
}

// TestParkedNotJudgedAgain: a consent fresh when gossiped, parked for its
// issuer's accreditation, is accepted when the accreditation comes though
// it is older than max_record_age by then.
func TestParkedNotJudgedAgain(t *testing.T) {
	c := newClock()
	w := newWorldWith(t, func(cfg *ingest.Config) { cfg.Now = c.now; cfg.MaxRecordAge = 2 * time.Minute })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key, id := nodetest.Key(t)
	consent := nodetest.Consent(t, key, "research")
	if _, parked, err := w.p.IngestOrParkFrom(ctx, consent, service.SourceGossip, ""); !parked {
		t.Fatalf("not parked: %v", err)
	}
	c.advance(5 * time.Minute)
	if _, err := w.p.Ingest(ctx, w.fed.Accredit(t, id, protocol.RoleController), service.SourceFetch); err != nil {
		t.Fatal(err)
	}
	if err := w.p.WaitRecord(ctx, consent.CID()); err != nil {
		t.Fatalf("the parked consent was not accepted: %v", err)
	}
}
