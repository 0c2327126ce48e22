package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// InitOptions are the inputs of entente init. Zero Listen and API mean the
// defaults.
type InitOptions struct {
	Home         string   // the node's home directory, created 0700 if missing
	Federation   string   // federation file; stored as an absolute path
	Jurisdiction string   // this node's jurisdiction, a code of the federation
	KeyFile      string   // existing key to copy to Home/node.key; empty: a new key
	Listen       []string // libp2p listen multiaddrs
	Announce     []string // addresses advertised to peers instead; optional
	API          string   // HTTP API host:port
}

// Init sets up a node's home directory: it checks the federation file and the
// jurisdiction, then writes Home/node.key (a copy of KeyFile, or a new key),
// Home/api-token and Home/config.toml, all 0600, and returns the node's peer
// ID. It refuses to touch a home that already holds any of the three files
// (the error wraps fs.ErrExist), and removes what it wrote if it fails.
func Init(opts InitOptions) (peer.ID, error) {
	if opts.Home == "" {
		return "", errors.New("home: no home directory given")
	}
	if opts.Federation == "" {
		return "", errors.New("federation: no federation file given")
	}
	home, err := filepath.Abs(opts.Home)
	if err != nil {
		return "", fmt.Errorf("home: %w", err)
	}
	fedPath, err := filepath.Abs(opts.Federation)
	if err != nil {
		return "", fmt.Errorf("federation: %w", err)
	}
	if err := (LoadOptions{}).check("federation file", fedPath); err != nil {
		return "", err
	}
	fed, err := LoadFederation(fedPath)
	if err != nil {
		return "", err
	}
	if _, ok := fed.Jurisdiction(opts.Jurisdiction); !ok {
		return "", fmt.Errorf("jurisdiction: %q is not in federation %q (it has %s)",
			opts.Jurisdiction, fed.Name, strings.Join(fed.Codes(), ", "))
	}

	n := &Node{
		Home:         home,
		Federation:   fedPath,
		Jurisdiction: opts.Jurisdiction,
		Listen:       slices.Clone(opts.Listen),
		Announce:     slices.Clone(opts.Announce),
		API:          API{Listen: opts.API},
	}
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		return "", err
	}
	conf, err := n.Marshal()
	if err != nil {
		return "", err
	}

	var sk crypto.PrivKey
	if opts.KeyFile != "" {
		sk, err = LoadKey(opts.KeyFile)
	} else {
		sk, err = GenerateKey()
	}
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return "", fmt.Errorf("node key: %w", err)
	}

	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("home: %w", err)
	}
	configPath := filepath.Join(home, ConfigFile)
	for _, p := range []string{configPath, n.KeyPath(), n.APITokenPath()} {
		if _, err := os.Lstat(p); err == nil {
			return "", existsError(p)
		}
	}

	var written []string
	fail := func(err error) (peer.ID, error) {
		for _, p := range written {
			os.Remove(p)
		}
		return "", err
	}
	if err := WriteKey(n.KeyPath(), sk); err != nil {
		return fail(err)
	}
	written = append(written, n.KeyPath())
	if _, err := WriteToken(n.APITokenPath()); err != nil {
		return fail(err)
	}
	written = append(written, n.APITokenPath())
	// The config goes last: its presence marks a finished init.
	if err := writeFileNew(configPath, conf, 0o600); err != nil {
		return fail(err)
	}
	return id, nil
}
