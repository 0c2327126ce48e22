package config

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"runtime"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pelletier/go-toml/v2"
)

// AccessFile is the file of a node's home that names its API callers
// (DESIGN.md §7): `[[caller]]` tables of name, role, peer, sha256 (the
// hex SHA-256 of the caller's token; the token itself is shown once, when
// granted, and kept nowhere) and created. It is mode 0600.
const AccessFile = "access.toml"

// TokenPrefix starts every caller token: "ent1_" and 32 random bytes in
// unpadded base64url.
const TokenPrefix = "ent1_"

// Caller roles a grant may give.
var CallerRoles = []string{"controller", "regulator", "auditor"}

// Grant is one API caller of the access file.
type Grant struct {
	Name    string    `toml:"name"`
	Role    string    `toml:"role"`
	Peer    string    `toml:"peer"`
	SHA256  string    `toml:"sha256"`
	Created time.Time `toml:"created"`
}

// Access is the access file: its callers, in the order granted.
type Access struct {
	Callers []Grant `toml:"caller"`
}

// maxAccessFileBytes caps what LoadAccess reads (a few thousand callers).
const maxAccessFileBytes = 1 << 20

var callerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// LoadAccess reads the access file at path. A missing file is an empty
// one (no callers); a file its group or others may read or write is
// refused, as are unknown keys and invalid entries.
func LoadAccess(path string) (*Access, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Access{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("access file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("access file %s: permissions %04o are too open: it must not be accessible by group or others (run chmod 600 %s)", path, perm, path)
	}
	data, err := readCapped(path, maxAccessFileBytes)
	if err != nil {
		return nil, fmt.Errorf("access file: %w", err)
	}
	var a Access
	if err := decodeStrict(data, &a); err != nil {
		return nil, fmt.Errorf("access file %s: %w", path, err)
	}
	if err := a.validate(); err != nil {
		return nil, fmt.Errorf("access file %s: %w", path, err)
	}
	return &a, nil
}

func (a *Access) validate() error {
	seen := map[string]bool{}
	for i, g := range a.Callers {
		switch {
		case !callerName.MatchString(g.Name):
			return fmt.Errorf("caller %d: name %q: want 1 to 64 letters, digits, '.', '_', '@' or '-'", i+1, g.Name)
		case seen[g.Name]:
			return fmt.Errorf("caller %q: named twice", g.Name)
		case !slices.Contains(CallerRoles, g.Role):
			return fmt.Errorf("caller %q: role %q: want one of %v", g.Name, g.Role, CallerRoles)
		}
		if _, err := peer.Decode(g.Peer); err != nil {
			return fmt.Errorf("caller %q: peer %q: %v", g.Name, g.Peer, err)
		}
		if b, err := hex.DecodeString(g.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("caller %q: sha256: want 64 hex digits", g.Name)
		}
		seen[g.Name] = true
	}
	return nil
}

// Write writes the access file to path atomically, mode 0600.
func (a *Access) Write(path string) error {
	if err := a.validate(); err != nil {
		return err
	}
	data, err := toml.Marshal(a)
	if err != nil {
		return err
	}
	header := "# API callers of this node (entente access grant|revoke|list). Tokens are kept\n# as their SHA-256 only.\n\n"
	return WriteFileAtomic(path, append([]byte(header), data...), TokenFileMode)
}

// Add grants a new caller a new token, which it returns (it is kept
// nowhere); it refuses a name already granted. The caller's role is not
// checked against the federation's records here: see entente access grant.
func (a *Access) Add(name, role string, id peer.ID, now time.Time) (string, error) {
	if slices.ContainsFunc(a.Callers, func(g Grant) bool { return g.Name == name }) {
		return "", fmt.Errorf("a caller named %q is already granted (revoke it first to rotate its token)", name)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	g := Grant{Name: name, Role: role, Peer: id.String(), SHA256: TokenSHA256(token), Created: now.UTC().Truncate(time.Second)}
	next := &Access{Callers: append(slices.Clone(a.Callers), g)}
	if err := next.validate(); err != nil {
		return "", err
	}
	a.Callers = next.Callers
	return token, nil
}

// Remove revokes the caller named name.
func (a *Access) Remove(name string) error {
	i := slices.IndexFunc(a.Callers, func(g Grant) bool { return g.Name == name })
	if i < 0 {
		return fmt.Errorf("no caller named %q", name)
	}
	a.Callers = slices.Delete(a.Callers, i, i+1)
	return nil
}

// Match returns the caller whose token is token. It compares the token's
// hash with every caller's in constant time.
func (a *Access) Match(token string) (Grant, bool) {
	sum := sha256.Sum256([]byte(token))
	var found Grant
	ok := 0
	for _, g := range a.Callers {
		want, err := hex.DecodeString(g.SHA256)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found, ok = g, 1
		}
	}
	return found, ok == 1
}

// TokenSHA256 is the hex SHA-256 of a token, as the access file keeps it.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
