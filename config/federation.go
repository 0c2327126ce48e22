package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"
)

// maxFederationFileBytes caps what LoadFederation reads: a federation file
// lists a few dozen jurisdictions, never megabytes.
const maxFederationFileBytes = 1 << 20

// maxFederationNameLen keeps the name usable inside a checkpoint origin line
// and a pubsub topic name.
const maxFederationNameLen = 64

// Federation is the federation file: the federation's name and, for each
// member jurisdiction, its authority key and founding nodes. It is plain
// data; call Validate (LoadFederation and ParseFederation do) before relying
// on the helper methods, which skip entries that do not parse.
type Federation struct {
	// Name names the federation in checkpoint origins
	// ("entente/<name>/<peer>") and in topic names: [a-z0-9._-], at most 64.
	Name          string         `toml:"name"`
	Jurisdictions []Jurisdiction `toml:"jurisdiction"`
}

// Jurisdiction is one member of a federation.
type Jurisdiction struct {
	// Code is the ISO 3166-1 alpha-2 code, upper case ("DE").
	Code string `toml:"code"`
	// Name is the display name ("Germany").
	Name string `toml:"name"`
	// Authority is the peer ID of the key that accredits this
	// jurisdiction's nodes, platforms and regulators, and signs its rules.
	Authority string `toml:"authority"`
	// Bootstrap lists the founding nodes' multiaddrs, each ending in
	// /p2p/<peer ID>. Founding nodes are members without an accreditation.
	Bootstrap []string `toml:"bootstrap,omitempty"`
}

// LoadFederation reads, decodes and validates the federation file at path.
// Errors start with path and name the offending field.
func LoadFederation(path string) (*Federation, error) {
	data, err := readCapped(path, maxFederationFileBytes)
	if err != nil {
		return nil, fmt.Errorf("federation file: %w", err)
	}
	f, err := ParseFederation(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// ParseFederation decodes and validates a federation file. Unknown keys are
// errors.
func ParseFederation(data []byte) (*Federation, error) {
	var f Federation
	if err := decodeStrict(data, &f); err != nil {
		return nil, err
	}
	for i := range f.Jurisdictions {
		if len(f.Jurisdictions[i].Bootstrap) == 0 {
			f.Jurisdictions[i].Bootstrap = nil // "bootstrap = []" and no key mean the same
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// Validate checks every field and returns the first broken one as a
// *FieldError.
func (f *Federation) Validate() error {
	if err := validateFederationName(f.Name); err != nil {
		return &FieldError{Field: "name", Err: err}
	}
	if len(f.Jurisdictions) == 0 {
		return fieldErr("jurisdiction", "at least one jurisdiction is required")
	}
	codes := make(map[string]int)
	founders := make(map[peer.ID]int) // founding node -> index of its jurisdiction
	for i, j := range f.Jurisdictions {
		at := fmt.Sprintf("jurisdiction[%d]", i)
		if !validCode(j.Code) {
			return fieldErr(at+".code", "%q is not an upper-case ISO 3166-1 alpha-2 code", j.Code)
		}
		if prev, dup := codes[j.Code]; dup {
			return fieldErr(at+".code", "%s is already used by jurisdiction[%d]", j.Code, prev)
		}
		codes[j.Code] = i
		if strings.TrimSpace(j.Name) == "" {
			return fieldErr(at+".name", "missing display name")
		}
		if _, err := ParsePeerID(j.Authority); err != nil {
			return &FieldError{Field: at + ".authority", Err: err}
		}
		seen := make(map[string]bool)
		for k, s := range j.Bootstrap {
			field := fmt.Sprintf("%s.bootstrap[%d]", at, k)
			info, err := parseBootstrap(s)
			if err != nil {
				return &FieldError{Field: field, Err: err}
			}
			if seen[s] {
				return fieldErr(field, "duplicate address %s", s)
			}
			seen[s] = true
			if prev, taken := founders[info.ID]; taken && prev != i {
				return fieldErr(field, "peer %s is already a founding node of jurisdiction[%d] (%s)",
					info.ID, prev, f.Jurisdictions[prev].Code)
			}
			founders[info.ID] = i
		}
	}
	return nil
}

// Marshal encodes f as a federation file.
func (f *Federation) Marshal() ([]byte, error) {
	b, err := toml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("encode federation: %w", err)
	}
	return b, nil
}

// Digest names the federation f describes: "sha256:" and the hex SHA-256
// of its canonical encoding (Marshal), so that two files that differ only
// in layout or comments have one digest and two that name another key,
// address or jurisdiction do not. Every node of a federation must read the
// same one: its status shows it, for operators to compare.
func (f *Federation) Digest() (string, error) {
	b, err := f.Marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Jurisdiction returns the jurisdiction with this code.
func (f *Federation) Jurisdiction(code string) (*Jurisdiction, bool) {
	for i := range f.Jurisdictions {
		if f.Jurisdictions[i].Code == code {
			return &f.Jurisdictions[i], true
		}
	}
	return nil, false
}

// Codes returns the jurisdiction codes in file order.
func (f *Federation) Codes() []string {
	codes := make([]string, len(f.Jurisdictions))
	for i, j := range f.Jurisdictions {
		codes[i] = j.Code
	}
	return codes
}

// Authorities maps each jurisdiction code to its authority's peer ID.
func (f *Federation) Authorities() map[string]peer.ID {
	m := make(map[string]peer.ID, len(f.Jurisdictions))
	for _, j := range f.Jurisdictions {
		if id, err := ParsePeerID(j.Authority); err == nil {
			m[j.Code] = id
		}
	}
	return m
}

// FoundingNodes maps each founding node (a peer named in a bootstrap
// address) to the code of its jurisdiction.
func (f *Federation) FoundingNodes() map[peer.ID]string {
	m := make(map[peer.ID]string)
	for _, j := range f.Jurisdictions {
		for _, s := range j.Bootstrap {
			if info, err := parseBootstrap(s); err == nil {
				m[info.ID] = j.Code
			}
		}
	}
	return m
}

// BootstrapAddrs returns every founding node with all its addresses, in file
// order of first appearance.
func (f *Federation) BootstrapAddrs() []peer.AddrInfo {
	var infos []peer.AddrInfo
	index := make(map[peer.ID]int)
	for _, j := range f.Jurisdictions {
		for _, s := range j.Bootstrap {
			info, err := parseBootstrap(s)
			if err != nil {
				continue
			}
			if i, ok := index[info.ID]; ok {
				infos[i].Addrs = append(infos[i].Addrs, info.Addrs...)
				continue
			}
			index[info.ID] = len(infos)
			infos = append(infos, *info)
		}
	}
	return infos
}

// Restrict returns a copy of f holding only the jurisdictions in trust, in
// file order. An empty trust list means every jurisdiction. A code that is
// not in f is an error.
func (f *Federation) Restrict(trust []string) (*Federation, error) {
	var unknown []string
	for _, code := range trust {
		if _, ok := f.Jurisdiction(code); !ok {
			unknown = append(unknown, code)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("jurisdictions not in federation %q: %s (it has %s)",
			f.Name, strings.Join(unknown, ", "), strings.Join(f.Codes(), ", "))
	}
	out := &Federation{Name: f.Name}
	for _, j := range f.Jurisdictions {
		if len(trust) == 0 || slices.Contains(trust, j.Code) {
			j.Bootstrap = slices.Clone(j.Bootstrap)
			out.Jurisdictions = append(out.Jurisdictions, j)
		}
	}
	return out, nil
}

// ParsePeerID parses the canonical string form of an Ed25519 libp2p peer ID
// (12D3KooW...), the only form of identity entente accepts: the public key
// must be recoverable from the ID itself.
func ParsePeerID(s string) (peer.ID, error) {
	if s == "" {
		return "", fmt.Errorf("missing peer ID")
	}
	id, err := peer.Decode(s)
	if err != nil {
		return "", fmt.Errorf("not a peer ID: %w", err)
	}
	if id.String() != s {
		return "", fmt.Errorf("peer ID %q is not in canonical form (write %s)", s, id)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("peer ID %s does not embed its public key (want an Ed25519 ID, 12D3KooW...): %w", s, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("peer ID %s is a %s key, want Ed25519", s, pub.Type())
	}
	return id, nil
}

// parseBootstrap parses a founding node's address: a transport multiaddr
// followed by /p2p/<Ed25519 peer ID>.
func parseBootstrap(s string) (*peer.AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("not a multiaddr: %w", err)
	}
	transport, id := peer.SplitAddr(m)
	if id == "" {
		return nil, fmt.Errorf("%s does not end in /p2p/<peer ID>", s)
	}
	if len(transport) == 0 {
		return nil, fmt.Errorf("%s has no transport address before /p2p", s)
	}
	if _, err := ParsePeerID(id.String()); err != nil {
		return nil, err
	}
	return &peer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{transport}}, nil
}

func validateFederationName(name string) error {
	if name == "" {
		return fmt.Errorf("missing federation name")
	}
	if len(name) > maxFederationNameLen {
		return fmt.Errorf("longer than %d characters", maxFederationNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("%q: use only a-z, 0-9, '.', '_' and '-'", name)
		}
	}
	return nil
}

// validCode reports whether s looks like an ISO 3166-1 alpha-2 code. Whether
// the code is assigned is not checked: a federation may use private codes.
func validCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

// readCapped reads a whole small file, refusing one larger than limit.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the %d bytes allowed", path, limit)
	}
	return data, nil
}
