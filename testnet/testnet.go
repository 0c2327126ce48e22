// Package testnet runs whole entente federations on one machine: keys,
// authorities, a federation file and N nodes on loopback, in this process.
// Tests, the demo and benchmarks use it; it drives nodes through their
// public API and never re-implements them.
//
//	net, err := testnet.Start(testnet.Options{Nodes: 3})
//	defer net.Close()
//	err = net.WaitConnected(ctx)
package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Options configure a testnet. A zero field means the documented default.
type Options struct {
	// Name is the federation name. Default "testnet".
	Name string
	// Jurisdictions of the federation. Default DE, FR, BR.
	Jurisdictions []string
	// Nodes is the number of nodes, assigned to jurisdictions round-robin;
	// all of them are founding nodes. Default one per jurisdiction.
	Nodes int
	// Dir holds the federation file, keys and node data. Default: a new
	// temporary directory, removed by Close.
	Dir string
	// Keep writes the keys and the API addresses to Dir (AuthorityKeyFile,
	// NodeKeyFile, APIAddrFile), so that Reopen can start the
	// same federation again from it. Requires Dir.
	Keep bool
	// InMemory keeps node stores in memory (faster; no restarts).
	InMemory bool
	// API starts each node's HTTP API on 127.0.0.1 with a system port.
	API bool
	// QUIC makes nodes listen (and be listed in the federation file) on
	// QUIC as well as TCP.
	QUIC bool
	// Logger for the nodes; nil discards.
	Logger *slog.Logger
	// ReconnectInterval of the nodes. Default 1s.
	ReconnectInterval time.Duration
	// SyncInterval of the nodes. Default 2s.
	SyncInterval time.Duration
	// NoSync turns reconciliation off, for tests of gossip or fetch alone.
	NoSync bool
	// DeliverBackoff bounds the nodes' waits between pushes of a TLP:RED
	// notice to a node (node.Config.DeliverBackoff); zero fields take the
	// node's defaults.
	DeliverBackoff node.Backoff
	// StreamKeepalive is the time between keepalive comments on the API's
	// event streams. Default: the API's (15s).
	StreamKeepalive time.Duration
	// Node, when set, adjusts each node's configuration before it starts
	// (benchmarks lift the API's per-caller bounds with it).
	Node func(i int, c *node.Config)
}

// Unbounded lifts the API's bounds on one client (connections from one
// address, requests per second of one caller): for benchmarks that load
// a node from one process.
func Unbounded(_ int, c *node.Config) {
	c.MaxConnections, c.MaxConnectionsPerClient = 1<<16, 1<<16
	c.Rate, c.Burst, c.PublicRate = 1e9, 1<<30, 1e9
}

var defaultJurisdictions = []string{"DE", "FR", "BR"}

// Names of the demo jurisdictions.
var jurisdictionNames = map[string]string{
	"DE": "Germany", "FR": "France", "BR": "Brazil", "AR": "Argentina", "ES": "Spain",
	"IT": "Italy", "MX": "Mexico", "CL": "Chile", "PT": "Portugal", "NL": "Netherlands",
}

// Net is a running federation.
type Net struct {
	Federation     *config.Federation
	FederationPath string
	Dir            string
	// Authorities are the jurisdictions' authority keys, by code.
	Authorities map[string]crypto.PrivKey
	Nodes       []*Member

	opts      Options
	removeDir bool

	// side maps a node's peer ID to its side of a partition; empty when
	// the federation is whole.
	sideMu    sync.Mutex
	side      map[peer.ID]int
	closeOnce sync.Once
	closeErr  error
}

// Member is one node of the testnet.
type Member struct {
	*node.Node
	Index   int
	Key     crypto.PrivKey
	Token   string
	DataDir string
	// AccessFile is the member's access file (Grant writes it).
	AccessFile string
	cfg        node.Config
	mu         sync.Mutex
	stopped    bool
}

// Start builds the federation and starts its nodes. Nodes dial each other
// from their bootstrap lists; use WaitConnected to wait for the mesh.
//
// Ports are chosen before the federation file is written, so another
// process may take one first; nodes then fail to bind (they do not share
// ports) and Start tries again with new ports, a few times.
func Start(opts Options) (*Net, error) {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var n *Net
		if n, err = start(opts); err == nil {
			return n, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) && !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}

func start(opts Options) (_ *Net, err error) {
	if opts.Keep && opts.Dir == "" {
		return nil, errors.New("testnet: Options.Keep needs Options.Dir")
	}
	opts.setDefaults()
	n := &Net{opts: opts}
	if n.Dir, n.removeDir, err = testnetDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	p, err := drawUp(opts, n.Dir)
	if err != nil {
		return nil, err
	}
	n.Federation, n.FederationPath, n.Authorities = p.fed, p.fedPath, p.authorities
	for i, mp := range p.members {
		m, err := n.startMember(i, mp)
		if err != nil {
			return nil, err
		}
		n.Nodes = append(n.Nodes, m)
	}
	if opts.Keep { // once every node has its ports: Start tries again on others
		if err := p.keep(n.Dir); err != nil {
			return nil, err
		}
		if err := n.keepAPIAddrs(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// testnetDir is dir, or a new temporary directory (remove reports which).
func testnetDir(dir string) (_ string, remove bool, err error) {
	if dir != "" {
		return dir, false, nil
	}
	dir, err = os.MkdirTemp("", "entente-testnet-*")
	return dir, err == nil, err
}

func (o *Options) setDefaults() {
	if o.Name == "" {
		o.Name = "testnet"
	}
	if len(o.Jurisdictions) == 0 {
		o.Jurisdictions = defaultJurisdictions
	}
	if o.Nodes == 0 {
		o.Nodes = len(o.Jurisdictions)
	}
	if o.ReconnectInterval == 0 {
		o.ReconnectInterval = time.Second
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = 2 * time.Second
	}
}

// plan is a federation drawn up before its nodes start: the authorities'
// keys, each node's key, jurisdiction and addresses, and the federation
// file naming them, written in the testnet's directory.
type plan struct {
	fed         *config.Federation
	fedPath     string
	authorities map[string]crypto.PrivKey
	members     []memberPlan
}

// memberPlan is one node of a plan.
type memberPlan struct {
	key          crypto.PrivKey
	id           peer.ID
	jurisdiction string
	listen       []string
}

// drawUp makes the keys, chooses the ports and writes the federation
// file, in which every node is a founding node of its jurisdiction
// (assigned round-robin).
func drawUp(opts Options, dir string) (plan, error) {
	p := plan{fed: &config.Federation{Name: opts.Name}, authorities: map[string]crypto.PrivKey{}}
	for _, j := range opts.Jurisdictions {
		k, err := config.GenerateKey()
		if err != nil {
			return p, err
		}
		p.authorities[j] = k
		id, _ := peer.IDFromPrivateKey(k)
		name := jurisdictionNames[j]
		if name == "" {
			name = j
		}
		p.fed.Jurisdictions = append(p.fed.Jurisdictions, config.Jurisdiction{Code: j, Name: name, Authority: id.String()})
	}
	for i := 0; i < opts.Nodes; i++ {
		k, err := config.GenerateKey()
		if err != nil {
			return p, err
		}
		id, _ := peer.IDFromPrivateKey(k)
		port, err := FreePort()
		if err != nil {
			return p, err
		}
		listen := []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)}
		if opts.QUIC {
			listen = append(listen, fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", port))
		}
		jur := &p.fed.Jurisdictions[i%len(opts.Jurisdictions)]
		for _, l := range listen {
			jur.Bootstrap = append(jur.Bootstrap, l+"/p2p/"+id.String())
		}
		p.members = append(p.members, memberPlan{key: k, id: id, jurisdiction: jur.Code, listen: listen})
	}
	if err := p.fed.Validate(); err != nil {
		return p, fmt.Errorf("testnet: federation: %w", err)
	}
	data, err := p.fed.Marshal()
	if err != nil {
		return p, err
	}
	p.fedPath = filepath.Join(dir, "federation.toml")
	return p, config.WriteFileAtomic(p.fedPath, data, 0o644)
}

// startMember starts node i of the plan in this process.
func (n *Net) startMember(i int, p memberPlan) (*Member, error) {
	m := &Member{Index: i, Key: p.key, Token: randomToken(), DataDir: filepath.Join(n.Dir, fmt.Sprintf("node%d", i))}
	m.cfg = node.Config{
		Key:               p.key,
		Federation:        n.Federation,
		Jurisdiction:      p.jurisdiction,
		Listen:            p.listen,
		DataDir:           m.DataDir,
		InMemory:          n.opts.InMemory,
		APIToken:          m.Token,
		AccessFile:        filepath.Join(n.Dir, fmt.Sprintf("access%d.toml", i)),
		ReconnectInterval: n.opts.ReconnectInterval,
		DisableReuseport:  true,
		SyncInterval:      n.opts.SyncInterval,
		DisableSync:       n.opts.NoSync,
		Gate:              n.sameSide(p.key),
		DeliverBackoff:    n.opts.DeliverBackoff,
		StreamKeepalive:   n.opts.StreamKeepalive,
	}
	if n.opts.API {
		m.cfg.APIAddr = "127.0.0.1:0"
		if n.opts.Keep {
			m.cfg.APIAddr = n.keptAPIAddr(i)
		}
	}
	if n.opts.Logger != nil {
		m.cfg.Logger = n.opts.Logger.With("member", i)
	}
	if n.opts.Node != nil {
		n.opts.Node(i, &m.cfg)
	}
	m.AccessFile = m.cfg.AccessFile
	var err error
	if m.Node, err = node.New(m.cfg); err != nil {
		return nil, fmt.Errorf("testnet: node %d: %w", i, err)
	}
	return m, nil
}

// sameSide is a node's gate: while the federation is partitioned, a node
// refuses the nodes on the other side (peers outside the testnet are not
// its business).
func (n *Net) sameSide(key crypto.PrivKey) func(peer.ID) bool {
	self, _ := peer.IDFromPrivateKey(key)
	return func(p peer.ID) bool {
		n.sideMu.Lock()
		defer n.sideMu.Unlock()
		a, okA := n.side[self]
		b, okB := n.side[p]
		return !okA || !okB || a == b
	}
}

// Partition cuts the federation: nodes in different groups (by index)
// refuse each other and their connections are closed. Nodes in no group
// stay connected to everyone.
func (n *Net) Partition(groups ...[]int) {
	n.sideMu.Lock()
	n.side = map[peer.ID]int{}
	for g, members := range groups {
		for _, i := range members {
			n.side[n.Nodes[i].ID()] = g
		}
	}
	n.sideMu.Unlock()
	for _, a := range n.Running() {
		for _, b := range n.Running() {
			if a != b && !n.sameSide(a.Key)(b.ID()) {
				a.Host().Network().ClosePeer(b.ID())
			}
		}
	}
}

// Heal ends a partition; nodes reconnect at their next dial tick
// (Options.ReconnectInterval).
func (n *Net) Heal() {
	n.sideMu.Lock()
	n.side = nil
	n.sideMu.Unlock()
}

// randomToken is an API token like the ones entente init writes.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// FreePort is a TCP and UDP port on loopback that was free a moment ago,
// chosen below the system's range of ephemeral ports: a port the kernel
// gives out for ":0" can be taken by any other process's dial or listen
// between this choice and the node's bind, and a kept testnet (Options.Keep)
// binds its ports again when it is reopened, minutes later. Ports below the
// range are given to no one unasked.
func FreePort() (int, error) {
	lo, hi := 20000, ephemeralLow()
	for try := 0; try < 64 && hi-lo >= 1000; try++ {
		port := lo + mrand.IntN(hi-lo)
		if portFree(port) {
			return port, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether port is free on loopback for TCP and UDP.
func portFree(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !tcpFree(addr) {
		return false
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	return pc.Close() == nil
}

// tcpFree reports whether a TCP listener could bind addr a moment ago.
func tcpFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	return ln.Close() == nil
}

// ephemeralLow is the first port of the system's ephemeral range (Linux's
// default where it cannot be read).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo)
	}
	return lo
}

// Close stops every node and removes the directory if Start made it.
func (n *Net) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		for i := len(n.Nodes) - 1; i >= 0; i-- {
			if err := n.Nodes[i].Stop(); err != nil {
				errs = append(errs, err)
			}
		}
		if n.removeDir {
			errs = append(errs, os.RemoveAll(n.Dir))
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// Stop closes the member's node (its data stays, for Restart).
func (m *Member) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped || m.Node == nil {
		return nil
	}
	m.stopped = true
	return m.Node.Close()
}

// Restart starts a stopped member again on the same key, addresses and
// data.
func (m *Member) Restart() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.stopped {
		return fmt.Errorf("testnet: node %d is running", m.Index)
	}
	nd, err := node.New(m.cfg)
	if err != nil {
		return err
	}
	m.Node, m.stopped = nd, false
	return nil
}

// Running lists the members that are not stopped.
func (n *Net) Running() []*Member {
	var out []*Member
	for _, m := range n.Nodes {
		m.mu.Lock()
		if !m.stopped {
			out = append(out, m)
		}
		m.mu.Unlock()
	}
	return out
}

// NodeOf returns the first member of jurisdiction j.
func (n *Net) NodeOf(j string) *Member {
	for _, m := range n.Nodes {
		if m.Jurisdiction() == j {
			return m
		}
	}
	return nil
}

// WaitConnected waits until every running node is connected to every
// other running node and sees it on the gossip topic (before that, a
// record published would not reach it).
func (n *Net) WaitConnected(ctx context.Context) error {
	return n.waitUntil(ctx, "full mesh", func() bool {
		running := n.Running()
		for _, a := range running {
			onTopic := map[peer.ID]bool{}
			for _, id := range a.Services().Gossip.Peers() {
				onTopic[id] = true
			}
			for _, b := range running {
				if a != b && (a.Host().Network().Connectedness(b.ID()) != network.Connected || !onTopic[b.ID()]) {
					return false
				}
			}
		}
		return true
	})
}

// WaitAll waits until every running node holds every record in cids.
func (n *Net) WaitAll(ctx context.Context, cids ...cid.Cid) error {
	for _, m := range n.Running() {
		for _, c := range cids {
			if err := m.Services().Ingest.WaitRecord(ctx, c); err != nil {
				return fmt.Errorf("node %d: %w", m.Index, err)
			}
		}
	}
	return nil
}

// WaitDelivered waits until member m's direct delivery of record c to
// jurisdiction j is acknowledged by every node of j.
func (n *Net) WaitDelivered(ctx context.Context, m *Member, c cid.Cid, j string) error {
	return n.waitUntil(ctx, "the delivery of "+c.String()+" to "+j, func() bool {
		return m.Deliveries(c)[j].State == service.DeliveryDelivered
	})
}

// waitUntil polls cond until it holds or ctx ends. Conditions on the
// libp2p network have no event to wait on, so it polls, briefly.
func (n *Net) waitUntil(ctx context.Context, what string, cond func() bool) error {
	return waitFor(ctx, what, nil, cond)
}

// Party is a key outside the node set: a platform, a regulator.
type Party struct {
	Name         string
	Jurisdiction string
	Key          crypto.PrivKey
	ID           peer.ID
	// Accreditation is the record granting the party its roles.
	Accreditation *protocol.Record
}

// Sign signs body with key, issued now.
func Sign(key crypto.PrivKey, body protocol.Body) (*protocol.Record, error) {
	return protocol.Sign(key, time.Now().UnixMilli(), body)
}

// NewParty makes a key and has jurisdiction j's authority accredit it with
// roles, valid from an hour ago for a year; the accreditation is submitted
// to j's first node (NodeFor; not waited for elsewhere).
func (n *Net) NewParty(ctx context.Context, j, name string, roles ...protocol.Role) (*Party, error) {
	k, err := config.GenerateKey()
	if err != nil {
		return nil, err
	}
	id, _ := peer.IDFromPrivateKey(k)
	rec, err := n.Accredit(ctx, j, id, name, roles...)
	if err != nil {
		return nil, err
	}
	return &Party{Name: name, Jurisdiction: j, Key: k, ID: id, Accreditation: rec}, nil
}

// Accredit has j's authority accredit subject with roles and submits the
// record to j's first node.
func (n *Net) Accredit(ctx context.Context, j string, subject peer.ID, name string, roles ...protocol.Role) (*protocol.Record, error) {
	auth, ok := n.Authorities[j]
	if !ok {
		return nil, fmt.Errorf("testnet: no jurisdiction %s", j)
	}
	now := time.Now()
	rec, err := Sign(auth, &protocol.Accreditation{
		Subject:      subject.String(),
		Jurisdiction: j,
		Roles:        sortedRoles(roles),
		Name:         name,
		ValidFrom:    now.Add(-time.Hour).UnixMilli(),
		ValidUntil:   now.AddDate(1, 0, 0).UnixMilli(),
	})
	if err != nil {
		return nil, err
	}
	return rec, n.Submit(ctx, n.NodeFor(j), rec)
}

// NodeFor returns the first member of jurisdiction j, or the first member
// when j has none (a federation may name jurisdictions without nodes).
func (n *Net) NodeFor(j string) *Member {
	if m := n.NodeOf(j); m != nil {
		return m
	}
	if len(n.Nodes) > 0 {
		return n.Nodes[0]
	}
	return nil
}

// Submit submits a record to a member.
func (n *Net) Submit(ctx context.Context, m *Member, r *protocol.Record) error {
	if m == nil {
		return errors.New("testnet: no such node")
	}
	_, err := m.Services().Ingest.SubmitRecord(ctx, r)
	return err
}

func sortedRoles(roles []protocol.Role) []protocol.Role {
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}

// Grant gives an API caller of m a token (the access file, as entente
// access grant writes it, without its check of the accreditation) and
// waits until m knows it.
func (m *Member) Grant(ctx context.Context, name string, role protocol.Role, id peer.ID) (string, error) {
	m.mu.Lock()
	a, err := config.LoadAccess(m.AccessFile)
	var token string
	if err == nil {
		token, err = a.Add(name, string(role), id, time.Now())
	}
	if err == nil {
		err = a.Write(m.AccessFile)
	}
	m.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("testnet: grant %s: %w", name, err)
	}
	for {
		if _, err := m.Services().Access.Resolve(token); !errors.Is(err, service.ErrUnauthorized) {
			return token, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("testnet: node %d did not apply the grant of %s: %w", m.Index, name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Get asks m's API for path with the operator's token and returns the
// body of a 200 answer; any other status is an error with the body.
func (m *Member) Get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.APIAddr()+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+m.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("testnet: GET %s: %d %.300s", path, resp.StatusCode, body)
	}
	return body, err
}
