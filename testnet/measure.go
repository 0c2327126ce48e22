package testnet

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// SignAccreditations signs n controller accreditations of fresh keys by
// jurisdiction j's authority, on every core: the cheapest records to
// authorise, for benchmarks of the ingest pipeline itself.
func (n *Net) SignAccreditations(j string, count int) ([]*protocol.Record, error) {
	auth, ok := n.Authorities[j]
	if !ok {
		return nil, fmt.Errorf("testnet: no jurisdiction %s", j)
	}
	out := make([]*protocol.Record, count)
	errs := make([]error, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	var wg sync.WaitGroup
	now := time.Now()
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(count); i = next.Add(1) - 1 {
				k, err := config.GenerateKey()
				if err != nil {
					errs[w] = err
					return
				}
				id, _ := peer.IDFromPrivateKey(k)
				if out[i], err = protocol.Sign(auth, now.UnixMilli(), &protocol.Accreditation{
					Subject: id.String(), Jurisdiction: j, Roles: []protocol.Role{protocol.RoleController},
					Name: fmt.Sprintf("platform %d", i), ValidFrom: now.Add(-time.Hour).UnixMilli(), ValidUntil: now.AddDate(1, 0, 0).UnixMilli(),
				}); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// BareVerifyRate is crypto/ed25519 Verify per second on every core, over
// messages the size of a record's signing input: the baseline ingest is
// compared with.
func BareVerifyRate(count int) float64 {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 300)
	sig := ed25519.Sign(priv, msg)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(count) {
				if !ed25519.Verify(pub, msg, sig) {
					panic("ed25519: a valid signature does not verify")
				}
			}
		}()
	}
	wg.Wait()
	return float64(count) / time.Since(start).Seconds()
}
