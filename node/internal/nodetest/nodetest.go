// Package nodetest holds what the tests of the node's services share: a
// federation of one jurisdiction, in-memory stores, signed records and
// libp2p hosts on loopback. Only tests import it.
package nodetest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// Key makes an Ed25519 key.
func Key(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, err := config.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// Fed is a federation of one jurisdiction, DE, and its authority's key.
type Fed struct {
	File      *config.Federation
	Authority crypto.PrivKey
}

// NewFed makes a federation named name with jurisdiction DE; founding
// are its founding nodes (their peer IDs; no addresses).
func NewFed(t testing.TB, name string, founding ...peer.ID) Fed {
	t.Helper()
	auth, id := Key(t)
	j := config.Jurisdiction{Code: "DE", Name: "Germany", Authority: id.String()}
	for _, f := range founding {
		j.Bootstrap = append(j.Bootstrap, "/ip4/127.0.0.1/tcp/1/p2p/"+f.String())
	}
	return Fed{File: &config.Federation{Name: name, Jurisdictions: []config.Jurisdiction{j}}, Authority: auth}
}

// Store opens an in-memory store, closed at the end of the test.
func Store(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// View is the trust view of f over a new in-memory store.
func (f Fed) View(t testing.TB) *trust.View {
	return trust.NewView(f.File, Store(t))
}

// Sign signs body with key, issued now.
func Sign(t testing.TB, key crypto.PrivKey, body protocol.Body) *protocol.Record {
	t.Helper()
	r, err := protocol.Sign(key, time.Now().UnixMilli(), body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Accredit is f's authority granting roles to subject for a year.
func (f Fed) Accredit(t testing.TB, subject peer.ID, roles ...protocol.Role) *protocol.Record {
	now := time.Now()
	return Sign(t, f.Authority, &protocol.Accreditation{
		Subject: subject.String(), Jurisdiction: "DE", Roles: roles, Name: "party",
		ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.AddDate(1, 0, 0).UnixMilli(),
	})
}

// Consent is a DE consent, signed by key.
func Consent(t testing.TB, key crypto.PrivKey, purpose string) *protocol.Record {
	return Sign(t, key, &protocol.Consent{
		Subject: make([]byte, 32), Jurisdiction: "DE", Categories: []string{"face"}, Purposes: []string{purpose},
		MaxTier: 1, Destinations: []string{"*"}, RetentionDays: 30,
		ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "app",
	})
}

// Put stores records directly, as if accepted earlier.
func Put(t testing.TB, s *store.Store, recs ...*protocol.Record) {
	t.Helper()
	if _, err := s.PutMany(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// Hosts starts n libp2p hosts on loopback TCP, with the given keys (new
// ones when keys is short), each connected to the others; they close at
// the end of the test.
func Hosts(t testing.TB, n int, keys ...crypto.PrivKey) []host.Host {
	t.Helper()
	hs := Apart(t, n, keys...)
	Connect(t, hs...)
	return hs
}

// Apart is Hosts not yet connected: a service that must see its peers
// connect (pubsub) starts before Connect, rather than learning of a
// protocol mounted after the connection from identify's push.
func Apart(t testing.TB, n int, keys ...crypto.PrivKey) []host.Host {
	t.Helper()
	hs := make([]host.Host, n)
	for i := range hs {
		k := crypto.PrivKey(nil)
		if i < len(keys) {
			k = keys[i]
		} else {
			k, _ = Key(t)
		}
		h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hs[i] = h
	}
	return hs
}

// Connect connects each of hs to the others.
func Connect(t testing.TB, hs ...host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range hs {
		for _, b := range hs[i+1:] {
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Eventually waits for cond, polling, up to d.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Ruleset is an open DE ruleset by f's authority: every destination and
// origin, tier 3, no prohibited purpose.
func (f Fed) Ruleset(t testing.TB) *protocol.Record {
	rules := protocol.Rules{MaxTier: 3, ProhibitedPurposes: []string{}, MaxRetentionDays: 365,
		BlockOnIncident: protocol.SeverityHigh, Conditions: []protocol.Condition{}}
	return Sign(t, f.Authority, &protocol.Ruleset{Jurisdiction: "DE", Version: 1, EffectiveFrom: time.Now().Add(-time.Hour).UnixMilli(),
		Export: protocol.ExportRules{Destinations: []string{"*"}, Rules: rules},
		Import: protocol.ImportRules{Origins: []string{"*"}, Rules: rules}})
}

// Metric is the value of the counter or gauge name of g whose labels
// include labels, summed over matching series; 0 when there is none.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
