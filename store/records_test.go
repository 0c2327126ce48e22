package store

import (
	"crypto/rand"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

// signer makes valid, signed records for tests. Each record gets a fresh
// issued_at, so no two records it makes are equal unless asked.
type signer struct {
	key crypto.PrivKey
	id  peer.ID

	mu    sync.Mutex
	clock int64
}

func newSigner(tb testing.TB) *signer {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	return &signer{key: key, id: id, clock: 1_700_000_000_000}
}

func (s *signer) tick() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clock++
	return s.clock
}

func (s *signer) sign(tb testing.TB, body protocol.Body) *protocol.Record {
	tb.Helper()
	r, err := protocol.Sign(s.key, s.tick(), body)
	if err != nil {
		tb.Fatalf("sign %s: %v", body.Kind(), err)
	}
	return r
}

// accreditation grants subject the controller role in jurisdiction.
func (s *signer) accreditation(tb testing.TB, subject peer.ID, jurisdiction string) *protocol.Record {
	tb.Helper()
	return s.sign(tb, &protocol.Accreditation{
		Subject:      subject.String(),
		Jurisdiction: jurisdiction,
		Roles:        []protocol.Role{protocol.RoleController},
		Name:         "platform " + subject.String()[len(subject.String())-6:],
		ValidFrom:    1_700_000_000_000,
		ValidUntil:   1_800_000_000_000,
	})
}

func (s *signer) revocation(tb testing.TB, target cid.Cid) *protocol.Record {
	tb.Helper()
	return s.sign(tb, &protocol.Revocation{
		Target:      protocol.LinkTo(target),
		Reason:      "withdrawn",
		EffectiveAt: 1_750_000_000_000,
	})
}

// incident is an open notice in jurisdiction, following follows if defined.
func (s *signer) incident(tb testing.TB, jurisdiction string, follows cid.Cid) *protocol.Record {
	tb.Helper()
	n := &protocol.Incident{
		Ref:          fmt.Sprintf("INC-%d", s.tick()),
		Jurisdiction: jurisdiction,
		Severity:     protocol.SeverityHigh,
		Status:       protocol.StatusOpen,
		TLP:          protocol.TLPGreen,
		Affected:     []string{},
		Categories:   []string{"face"},
		DetectedAt:   1_750_000_000_000,
		Summary:      "a breach",
	}
	if follows.Defined() {
		n.Follows = protocol.LinkPtr(follows)
	}
	return s.sign(tb, n)
}

func (s *signer) consent(tb testing.TB, jurisdiction string) *protocol.Record {
	tb.Helper()
	subject := make([]byte, 32)
	rand.Read(subject)
	return s.sign(tb, &protocol.Consent{
		Subject:       subject,
		Jurisdiction:  jurisdiction,
		Categories:    []string{"face"},
		Purposes:      []string{"research"},
		MaxTier:       1,
		Destinations:  []string{"*"},
		RetentionDays: 90,
		ExpiresAt:     1_800_000_000_000,
		Method:        "app consent screen",
	})
}

// peerID returns a fresh identity.
func peerID(tb testing.TB) peer.ID { return newSigner(tb).id }

// manyRecords signs n accreditations, spread over the cores.
func manyRecords(tb testing.TB, n int) []*protocol.Record {
	tb.Helper()
	s := newSigner(tb)
	subject := peerID(tb)
	out := make([]*protocol.Record, n)
	workers := 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				r, err := protocol.Sign(s.key, s.tick(), &protocol.Accreditation{
					Subject: subject.String(), Jurisdiction: "DE",
					Roles: []protocol.Role{protocol.RoleNode}, Name: "bench",
					ValidFrom: 1, ValidUntil: 2,
				})
				if err != nil {
					panic(err)
				}
				out[i] = r
			}
		})
	}
	wg.Wait()
	return out
}
