package node

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
)

// Config configures a node. A zero field means the documented default.
type Config struct {
	// Key is the node's identity (Ed25519). Required.
	Key crypto.PrivKey
	// Federation is the federation file. Required.
	Federation *config.Federation
	// Jurisdiction is the node's own jurisdiction; it must be in the
	// federation file. Required.
	Jurisdiction string
	// Trust restricts the jurisdictions this node recognises; empty means
	// all of the federation file. The node's own is always recognised.
	Trust []string
	// Listen are the libp2p listen multiaddrs. Default: TCP and QUIC on
	// 127.0.0.1 with ports chosen by the system.
	Listen []string
	// DisableReuseport makes the node's TCP sockets refuse a port another
	// socket holds, rather than share it (SO_REUSEPORT, libp2p's default).
	// Test networks that choose ports ahead set it, so a clash fails loudly.
	DisableReuseport bool
	// Announce, when set, are the addresses advertised to peers instead of
	// the listen addresses.
	Announce []string
	// DataDir is the Badger directory. Required unless InMemory.
	DataDir  string
	InMemory bool
	// APIAddr is the HTTP API's host:port; empty means no HTTP API.
	APIAddr string
	// APIToken is the bearer token POST endpoints require. Required when
	// APIAddr is set.
	APIToken string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ReconnectInterval is how often the node dials members it is not
	// connected to. Default 5s.
	ReconnectInterval time.Duration
	// MaxPendingIngest bounds records being ingested at once from the API;
	// past it the API answers 503 overloaded. Default 4096.
	MaxPendingIngest int
	// SyncInterval is how often the node reconciles its records with each
	// connected peer (it also does when a peer connects). Default 30s.
	SyncInterval time.Duration
	// DisableSync turns reconciliation off: the node then learns records
	// only by gossip and fetch. For tests of those paths alone.
	DisableSync bool
	// Gate, when set, is asked about every peer after the membership test:
	// false refuses it. Test networks use it to cut a federation in two.
	Gate func(peer.ID) bool
	// CheckpointInterval is how often the node signs a checkpoint of its
	// log, when the log grew since the last one. Default 10s.
	CheckpointInterval time.Duration
	// WitnessInterval is how often the node asks each connected peer for
	// its latest checkpoint and witnesses it (witness.go). Default 10s.
	WitnessInterval time.Duration
	// MaxConcurrentRequests bounds HTTP requests in flight; past it the API
	// answers 503 overloaded. Default 256.
	MaxConcurrentRequests int
	// MaxBatch bounds the requests of one verify-batch call. Default 1000.
	MaxBatch int
	// MaxBatchBytes bounds a verify-batch body. Default 1 MiB.
	MaxBatchBytes int
	// HTTPTimeouts of the API server; zero fields take defaults.
	HTTPTimeouts HTTPTimeouts
}

// HTTPTimeouts are the API server's timeouts.
type HTTPTimeouts struct {
	ReadHeader time.Duration // default 5s
	Read       time.Duration // default 30s
	Write      time.Duration // default 60s
	Idle       time.Duration // default 120s
}

func (c *Config) validate() error {
	switch {
	case c.Key == nil:
		return errors.New("node config: Key is required")
	case c.Key.Type() != crypto.Ed25519:
		return errors.New("node config: Key must be Ed25519")
	case c.Federation == nil:
		return errors.New("node config: Federation is required")
	case c.DataDir == "" && !c.InMemory:
		return errors.New("node config: DataDir is required (or InMemory)")
	case c.APIAddr != "" && c.APIToken == "":
		return errors.New("node config: APIToken is required with APIAddr")
	case c.CheckpointInterval < 0:
		return fmt.Errorf("node config: CheckpointInterval is negative (%s)", c.CheckpointInterval)
	}
	if _, ok := c.Federation.Jurisdiction(c.Jurisdiction); !ok {
		return fmt.Errorf("node config: Jurisdiction %q is not in federation %q", c.Jurisdiction, c.Federation.Name)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = 5 * time.Second
	}
	if c.MaxConcurrentRequests == 0 {
		c.MaxConcurrentRequests = 256
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 30 * time.Second
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 10 * time.Second
	}
	if c.WitnessInterval <= 0 {
		c.WitnessInterval = 10 * time.Second
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 1000
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = 1 << 20
	}
	if c.MaxPendingIngest == 0 {
		c.MaxPendingIngest = 4096
	}
	t := &c.HTTPTimeouts
	t.ReadHeader = orDefault(t.ReadHeader, 5*time.Second)
	t.Read = orDefault(t.Read, 30*time.Second)
	t.Write = orDefault(t.Write, 60*time.Second)
	t.Idle = orDefault(t.Idle, 120*time.Second)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// recognised is the federation file restricted to the jurisdictions the
// node recognises (Trust, and always its own).
func (c *Config) recognised() (*config.Federation, error) {
	if len(c.Trust) == 0 {
		return c.Federation, nil
	}
	trust := c.Trust
	if !slices.Contains(trust, c.Jurisdiction) {
		trust = append(slices.Clone(trust), c.Jurisdiction)
	}
	fed, err := c.Federation.Restrict(trust)
	if err != nil {
		return nil, fmt.Errorf("node: trust: %w", err)
	}
	return fed, nil
}
