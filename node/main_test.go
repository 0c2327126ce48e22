package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// TestMain fails the package if any test leaves a goroutine running: every
// node goroutine has an owner, and Close waits for them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStandaloneNode starts a node outside any testnet, in a federation of
// one jurisdiction (DE) without founding nodes, so it dials no one. It
// returns the node and DE's authority key.
func newStandaloneNode(t *testing.T, cfg node.Config) (*node.Node, crypto.PrivKey) {
	t.Helper()
	key, _ := newKey(t)
	authKey, authority := newKey(t)
	cfg.Key = key
	cfg.Federation = &config.Federation{
		Name:          "standalone",
		Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany", Authority: authority.String()}},
	}
	cfg.Jurisdiction = "DE"
	cfg.InMemory = true
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n, authKey
}

func TestCloseIsIdempotent(t *testing.T) {
	n, _ := newStandaloneNode(t, node.Config{APIAddr: "127.0.0.1:0", APIToken: "secret"})
	if err := n.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// The API is gone with it.
	if conn, err := net.Dial("tcp", n.APIAddr()); err == nil {
		conn.Close()
		t.Error("the API still accepts connections after Close")
	}

	// A closed node takes no more records, and says why.
	k, _ := newKey(t)
	r := mustSign(t, k, &protocol.Revocation{Target: protocol.LinkTo(protocol.RecordCID([]byte("x"))), Reason: "test", EffectiveAt: 1})
	if _, err := n.Services().Ingest.Submit(context.Background(), r.Bytes()); !errors.Is(err, service.ErrClosed) {
		t.Fatalf("Submit after Close: %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	key, _ := newKey(t)
	_, authority := newKey(t)
	fed := &config.Federation{
		Name:          "standalone",
		Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany", Authority: authority.String()}},
	}
	good := node.Config{Key: key, Federation: fed, Jurisdiction: "DE", InMemory: true}
	with := func(edit func(*node.Config)) node.Config {
		c := good
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  node.Config
		want string // in the error
	}{
		{"no key", node.Config{Federation: fed, Jurisdiction: "DE", InMemory: true}, "Key"},
		{"no federation", node.Config{Key: key, Jurisdiction: "DE", InMemory: true}, "Federation"},
		{"no data dir", node.Config{Key: key, Federation: fed, Jurisdiction: "DE"}, "DataDir"},
		{"api without token", with(func(c *node.Config) { c.APIAddr = "127.0.0.1:0" }), "APIToken"},
		{"unknown jurisdiction", with(func(c *node.Config) { c.Jurisdiction = "FR" }), "Jurisdiction"},
		{"negative sync interval", with(func(c *node.Config) { c.SyncInterval = -time.Second }), "SyncInterval is negative"},
		{"negative witness interval", with(func(c *node.Config) { c.WitnessInterval = -time.Second }), "WitnessInterval is negative"},
		{"negative reconnect interval", with(func(c *node.Config) { c.ReconnectInterval = -time.Second }), "ReconnectInterval is negative"},
		{"negative idle timeout", with(func(c *node.Config) { c.HTTPTimeouts.Idle = -time.Second }), "HTTPTimeouts.Idle is negative"},
		{"negative batch", with(func(c *node.Config) { c.MaxBatch = -1 }), "MaxBatch is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := node.New(tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("New accepted a config it should refuse")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// standaloneConfig is an in-memory node of a one-jurisdiction federation
// of its own, for tests of New.
func standaloneConfig(t *testing.T) node.Config {
	t.Helper()
	key, _ := newKey(t)
	_, authority := newKey(t)
	return node.Config{
		Key: key,
		Federation: &config.Federation{
			Name:          "standalone",
			Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany", Authority: authority.String()}},
		},
		Jurisdiction: "DE",
		InMemory:     true,
	}
}

// TestNewFailsCleanly: when New fails late (the API address is taken, after
// the store, host and gossip are up), it closes what it opened; TestMain's
// leak check sees anything left running.
func TestNewFailsCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := standaloneConfig(t)
	cfg.APIAddr, cfg.APIToken = taken.Addr().String(), "secret"
	n, err := node.New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("New succeeded on an API address in use")
	}
}

// TestNewFailsCleanlyOnTakenListenAddress: a listen address in use fails
// New with the system's error, and leaves no libp2p goroutine running
// (TestMain's leak check; libp2p.New itself leaks them when it cannot
// listen, so the node listens only once its host exists).
func TestNewFailsCleanlyOnTakenListenAddress(t *testing.T) {
	taken, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := standaloneConfig(t)
	cfg.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", taken.Addr().(*net.TCPAddr).Port)}
	cfg.DisableReuseport = true
	n, err := node.New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("New succeeded on a listen address in use")
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New on a listen address in use: %v; want the system's error", err)
	}
}

// TestMetricsDocumented: every metric a node registers is in the metrics
// table of docs/operating.md.
func TestMetricsDocumented(t *testing.T) {
	n, _ := newStandaloneNode(t, node.Config{APIAddr: "127.0.0.1:0", APIToken: "metrics-test-token-0123456789"})
	guide, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	families, err := n.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, f := range families {
		name := f.GetName()
		if !strings.HasPrefix(name, "entente_") {
			continue
		}
		seen++
		documented := strings.Contains(string(guide), "`"+name+"`") || strings.Contains(string(guide), "`"+name+"{")
		for i := len("entente_"); !documented && i < len(name); i++ {
			if name[i] == '_' {
				documented = strings.Contains(string(guide), "`"+name[:i+1]+"*`")
			}
		}
		if !documented {
			t.Errorf("metric %s is not in docs/operating.md", name)
		}
	}
	if seen < 10 {
		t.Fatalf("only %d entente metrics gathered", seen)
	}
}
