package testnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
)

// Files of a kept testnet (Options.Keep) in its directory, besides
// federation.toml and each node's data directory node<i>.
const (
	AuthorityKeyFile = "authority-%s.key" // of a jurisdiction's code
	NodeKeyFile      = "node%d.key"       // of a node's index
	// APIAddrFile holds a node's API address (Options.API), which Reopen
	// binds again if it is free, so that what was printed still works.
	APIAddrFile = "node%d.api"
)

// keep writes the plan's keys to dir, each 0600, as Reopen reads them.
func (p plan) keep(dir string) error {
	for j, k := range p.authorities {
		if err := config.WriteKey(filepath.Join(dir, fmt.Sprintf(AuthorityKeyFile, j)), k); err != nil {
			return fmt.Errorf("testnet: keeping the keys: %w", err)
		}
	}
	for i, m := range p.members {
		if err := config.WriteKey(filepath.Join(dir, fmt.Sprintf(NodeKeyFile, i)), m.key); err != nil {
			return fmt.Errorf("testnet: keeping the keys: %w", err)
		}
	}
	return nil
}

// Kept reports whether dir holds a testnet started with Options.Keep.
func Kept(dir string) bool {
	for _, f := range []string{"federation.toml", fmt.Sprintf(NodeKeyFile, 0)} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// Reopen starts again the testnet kept in opts.Dir (Options.Keep): the
// same federation file, keys, addresses (the API's too, where still free)
// and node data, each node with a new API token. The federation's shape (name, jurisdictions, nodes,
// QUIC) comes from the directory; opts gives the rest.
func Reopen(opts Options) (_ *Net, err error) {
	if opts.Dir == "" {
		return nil, errors.New("testnet: Reopen needs Options.Dir")
	}
	opts.setDefaults()
	opts.Keep = true // what it was started with: its API addresses are bound again
	n := &Net{opts: opts, Dir: opts.Dir, Authorities: map[string]crypto.PrivKey{}}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	p, err := readPlan(opts.Dir)
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
	return n, n.keepAPIAddrs()
}

// keptAPIAddr is the API address node i had when the testnet in n.Dir last
// ran, if it is free now; else a new port that outlasts this run
// (FreePort).
func (n *Net) keptAPIAddr(i int) string {
	b, err := os.ReadFile(filepath.Join(n.Dir, fmt.Sprintf(APIAddrFile, i)))
	if addr := strings.TrimSpace(string(b)); err == nil && tcpFree(addr) {
		return addr
	}
	port, err := FreePort()
	if err != nil {
		return "127.0.0.1:0"
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// keepAPIAddrs writes each node's API address to Dir (APIAddrFile).
func (n *Net) keepAPIAddrs() error {
	if !n.opts.API {
		return nil
	}
	for _, m := range n.Nodes {
		err := config.WriteFileAtomic(filepath.Join(n.Dir, fmt.Sprintf(APIAddrFile, m.Index)), []byte(m.APIAddr()+"\n"), 0o644)
		if err != nil {
			return fmt.Errorf("testnet: keeping the API addresses: %w", err)
		}
	}
	return nil
}

// readPlan reads the plan a kept testnet left in dir.
func readPlan(dir string) (plan, error) {
	p := plan{fedPath: filepath.Join(dir, "federation.toml"), authorities: map[string]crypto.PrivKey{}}
	var err error
	if p.fed, err = config.LoadFederation(p.fedPath); err != nil {
		return p, fmt.Errorf("testnet: %w", err)
	}
	for _, j := range p.fed.Codes() {
		if p.authorities[j], err = config.LoadKey(filepath.Join(dir, fmt.Sprintf(AuthorityKeyFile, j))); err != nil {
			return p, fmt.Errorf("testnet: %w", err)
		}
	}
	for i := 0; ; i++ {
		k, err := config.LoadKey(filepath.Join(dir, fmt.Sprintf(NodeKeyFile, i)))
		if errors.Is(err, fs.ErrNotExist) && i > 0 {
			return p, nil
		}
		if err != nil {
			return p, fmt.Errorf("testnet: %w", err)
		}
		mp, err := memberOf(p.fed, k)
		if err != nil {
			return p, fmt.Errorf("testnet: node %d: %w", i, err)
		}
		p.members = append(p.members, mp)
	}
}

// memberOf is the plan of the founding node whose key is k: its
// jurisdiction and listen addresses, from the federation file.
func memberOf(fed *config.Federation, k crypto.PrivKey) (memberPlan, error) {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return memberPlan{}, err
	}
	mp := memberPlan{key: k, id: id}
	suffix := "/p2p/" + id.String()
	for _, j := range fed.Jurisdictions {
		for _, b := range j.Bootstrap {
			if addr, ok := strings.CutSuffix(b, suffix); ok {
				mp.jurisdiction = j.Code
				mp.listen = append(mp.listen, addr)
			}
		}
	}
	if mp.jurisdiction == "" {
		return mp, fmt.Errorf("%s is not a founding node of the federation file", id)
	}
	return mp, nil
}
