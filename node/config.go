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

// Config configures a node. A zero field means its default, which is the
// node config file's (config.Defaults; the comments below repeat them).
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
	// APIHosts and APICORSOrigins are the names the API answers to
	// besides localhost and its own address, and the web origins that may
	// call it from a browser (config.API).
	APIHosts, APICORSOrigins []string
	// APIToken is the operator's bearer token: it may call every endpoint
	// (DESIGN.md §8, the operator role). Required when
	// APIAddr is set.
	APIToken string
	// AccessFile is the access file naming the API's granted callers
	// (config.AccessFile in the node's home); empty grants no one.
	AccessFile string
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
	// MaxStreams bounds the API's open event streams. Default 2048.
	MaxStreams int
	// MaxConnections bounds the API's open connections, and
	// MaxConnectionsPerClient those of one client address. Default 4096
	// and 256.
	MaxConnections, MaxConnectionsPerClient int
	// Rate and Burst bound the requests of each API caller with a token,
	// PublicRate those of each client address without one; the operator
	// is not bounded. Default 1000/s, 2000 and 50/s.
	Rate       float64
	Burst      int
	PublicRate float64
	// MaxBatch bounds the requests of one verify-batch call. Default 1000.
	MaxBatch int
	// MaxBatchBytes bounds a verify-batch body. Default 1 MiB.
	MaxBatchBytes int
	// MaxRecordAge is how old a decision time may be for the node to sign
	// the verdict (older ones are answered unsigned), and how old a record
	// new from a client or gossip may be (DESIGN.md §4). Default 10m.
	MaxRecordAge time.Duration
	// HTTPTimeouts of the API server; zero fields take defaults.
	HTTPTimeouts HTTPTimeouts
	// DeliverBackoff bounds the waits between pushes of a record to a
	// node by direct delivery; zero fields take the defaults
	// (deliver.DefaultMinBackoff, 1s, and deliver.DefaultMaxBackoff, 1m).
	// Tests shorten them.
	DeliverBackoff Backoff
	// StreamKeepalive is the time between keepalive comments on the API's
	// event streams; zero means the API's default (api.DefaultStreamKeepalive).
	StreamKeepalive time.Duration
	// Connections bound the node's libp2p connections (limits.go); zero
	// fields take the defaults. New refuses limits too low for the
	// federation's member nodes.
	Connections ConnLimits
}

// Backoff is an exponential backoff: from Min, doubling up to Max.
type Backoff struct {
	Min, Max time.Duration
}

// HTTPTimeouts are the API server's timeouts; zero takes the default of
// config.Defaults (limits.http_*_timeout).
type HTTPTimeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
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
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReconnectInterval", c.ReconnectInterval}, {"SyncInterval", c.SyncInterval},
		{"CheckpointInterval", c.CheckpointInterval}, {"WitnessInterval", c.WitnessInterval}, {"MaxRecordAge", c.MaxRecordAge},
		{"HTTPTimeouts.ReadHeader", c.HTTPTimeouts.ReadHeader}, {"HTTPTimeouts.Read", c.HTTPTimeouts.Read},
		{"HTTPTimeouts.Write", c.HTTPTimeouts.Write}, {"HTTPTimeouts.Idle", c.HTTPTimeouts.Idle},
		{"DeliverBackoff.Min", c.DeliverBackoff.Min}, {"DeliverBackoff.Max", c.DeliverBackoff.Max},
		{"StreamKeepalive", c.StreamKeepalive},
	} {
		if d.v < 0 {
			return fmt.Errorf("node config: %s is negative (%s); zero means the default", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"MaxPendingIngest", c.MaxPendingIngest}, {"MaxConcurrentRequests", c.MaxConcurrentRequests}, {"MaxStreams", c.MaxStreams},
		{"MaxBatch", c.MaxBatch}, {"MaxBatchBytes", c.MaxBatchBytes},
		{"MaxConnections", c.MaxConnections}, {"MaxConnectionsPerClient", c.MaxConnectionsPerClient}, {"Burst", c.Burst},
	} {
		if n.v < 0 {
			return fmt.Errorf("node config: %s is negative (%d); zero means the default", n.name, n.v)
		}
	}
	if c.Rate < 0 || c.PublicRate < 0 {
		return fmt.Errorf("node config: Rate and PublicRate may not be negative (%v, %v); zero means the default", c.Rate, c.PublicRate)
	}
	if c.Connections.Max < 0 || c.Connections.Low < 0 || c.Connections.High < 0 {
		return fmt.Errorf("node config: Connections has a negative limit (%+v); zero means the default", c.Connections)
	}
	if _, ok := c.Federation.Jurisdiction(c.Jurisdiction); !ok {
		return fmt.Errorf("node config: Jurisdiction %q is not in federation %q", c.Jurisdiction, c.Federation.Name)
	}
	return nil
}

// setDefaults fills the zero fields. The defaults are the node config
// file's (config.Defaults), the one place they are written; only Listen,
// which a file always sets, defaults here, to loopback with system ports.
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
	d := config.Defaults()
	setDuration(&c.ReconnectInterval, d.Gossip.ReconnectInterval)
	setDuration(&c.SyncInterval, d.Gossip.SyncInterval)
	setDuration(&c.CheckpointInterval, d.Gossip.CheckpointInterval)
	setDuration(&c.WitnessInterval, d.Gossip.WitnessInterval)
	setInt(&c.MaxConcurrentRequests, d.Limits.MaxConcurrentRequests)
	setInt(&c.MaxStreams, d.Limits.MaxStreams)
	setInt(&c.MaxBatch, d.Limits.MaxBatch)
	setInt(&c.MaxBatchBytes, int(d.Limits.MaxBodyBytes))
	setInt(&c.MaxPendingIngest, d.Limits.MaxPendingIngest)
	setInt(&c.MaxConnections, d.Limits.MaxConnections)
	setInt(&c.MaxConnectionsPerClient, d.Limits.MaxConnectionsPerClient)
	setInt(&c.Burst, d.Limits.Burst)
	if c.Rate == 0 {
		c.Rate = d.Limits.Rate
	}
	if c.PublicRate == 0 {
		c.PublicRate = d.Limits.PublicRate
	}
	setDuration(&c.MaxRecordAge, d.Limits.MaxRecordAge)
	c.Connections.setDefaults()
	t := &c.HTTPTimeouts
	setDuration(&t.ReadHeader, d.Limits.HTTPReadHeaderTimeout)
	setDuration(&t.Read, d.Limits.HTTPReadTimeout)
	setDuration(&t.Write, d.Limits.HTTPWriteTimeout)
	setDuration(&t.Idle, d.Limits.HTTPIdleTimeout)
}

func setDuration(p *time.Duration, def config.Duration) {
	if *p == 0 {
		*p = def.Duration
	}
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

// FromFile is the Config of a node config file (config.Load), with the
// node's key, its federation as the file restricts it
// (config.Node.LoadFederation) and its API token: every setting of the
// file, and nothing else, goes into the node.
func FromFile(nc *config.Node, key crypto.PrivKey, fed *config.Federation, token string) Config {
	return Config{
		Key:            key,
		Federation:     fed,
		Jurisdiction:   nc.Jurisdiction,
		Trust:          nc.Trust,
		Listen:         nc.Listen,
		Announce:       nc.Announce,
		DataDir:        nc.DataDir(),
		APIAddr:        nc.API.Listen,
		APIHosts:       nc.API.Hosts,
		APICORSOrigins: nc.API.CORSOrigins,
		Connections: ConnLimits{Max: nc.Gossip.MaxPeerConnections, Low: nc.Gossip.PeerConnectionsLow,
			High: nc.Gossip.PeerConnectionsHigh},
		MaxConnections:          nc.Limits.MaxConnections,
		MaxConnectionsPerClient: nc.Limits.MaxConnectionsPerClient,
		Rate:                    nc.Limits.Rate,
		Burst:                   nc.Limits.Burst,
		PublicRate:              nc.Limits.PublicRate,
		APIToken:                token,
		AccessFile:              nc.AccessPath(),
		ReconnectInterval:       nc.Gossip.ReconnectInterval.Duration,
		SyncInterval:            nc.Gossip.SyncInterval.Duration,
		CheckpointInterval:      nc.Gossip.CheckpointInterval.Duration,
		WitnessInterval:         nc.Gossip.WitnessInterval.Duration,
		MaxPendingIngest:        nc.Limits.MaxPendingIngest,
		MaxConcurrentRequests:   nc.Limits.MaxConcurrentRequests,
		MaxStreams:              nc.Limits.MaxStreams,
		MaxBatch:                nc.Limits.MaxBatch,
		MaxBatchBytes:           int(nc.Limits.MaxBodyBytes),
		MaxRecordAge:            nc.Limits.MaxRecordAge.Duration,
		HTTPTimeouts: HTTPTimeouts{
			ReadHeader: nc.Limits.HTTPReadHeaderTimeout.Duration,
			Read:       nc.Limits.HTTPReadTimeout.Duration,
			Write:      nc.Limits.HTTPWriteTimeout.Duration,
			Idle:       nc.Limits.HTTPIdleTimeout.Duration,
		},
	}
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
