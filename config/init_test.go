package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// writeFederation writes the valid federation fixture into dir.
func writeFederation(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "federation.toml")
	if err := os.WriteFile(path, []byte(newIDs(t).expand(validFederationTOML)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	writeFederation(t, dir)
	t.Chdir(dir) // the federation path is given relative, and must be stored absolute
	home := filepath.Join(dir, "nodes", "de-1")

	id, err := Init(InitOptions{
		Home:         home,
		Federation:   "federation.toml",
		Jurisdiction: "DE",
		Listen:       []string{"/ip4/127.0.0.1/tcp/0"},
		API:          "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, home, 0o700)
	for _, name := range []string{ConfigFile, DefaultKeyFile, DefaultTokenFile} {
		assertMode(t, filepath.Join(home, name), 0o600)
	}
	assertDirHolds(t, home, DefaultTokenFile, ConfigFile, DefaultKeyFile)

	n, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if n.Federation != filepath.Join(dir, "federation.toml") {
		t.Errorf("federation = %q, want the absolute path", n.Federation)
	}
	if n.Jurisdiction != "DE" || n.API.Listen != "127.0.0.1:0" || !slices.Equal(n.Listen, []string{"/ip4/127.0.0.1/tcp/0"}) {
		t.Errorf("config = %+v", n)
	}
	sk, err := n.LoadKey()
	if err != nil {
		t.Fatal(err)
	}
	if !id.MatchesPrivateKey(sk) {
		t.Errorf("Init returned %s, which is not the peer ID of node.key", id)
	}
	if _, err := n.LoadToken(); err != nil {
		t.Error(err)
	}
	if _, err := n.LoadFederation(); err != nil {
		t.Error(err)
	}
}

func TestInitDefaultsAndKeyFile(t *testing.T) {
	dir := t.TempDir()
	fed := writeFederation(t, dir)
	keyPath := filepath.Join(dir, "my.key")
	sk, _ := GenerateKey()
	if err := WriteKey(keyPath, sk); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	id, err := Init(InitOptions{Home: home, Federation: fed, Jurisdiction: "BR", KeyFile: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := peer.IDFromPrivateKey(sk)
	if id != want {
		t.Errorf("peer ID = %s, want that of --key, %s", id, want)
	}
	n, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if n.API.Listen != DefaultAPI || !slices.Equal(n.Listen, []string{DefaultListenTCP, DefaultListenQUIC}) {
		t.Errorf("defaults not written: api %q listen %v", n.API, n.Listen)
	}
	if copied, err := n.LoadKey(); err != nil || !copied.Equals(sk) {
		t.Errorf("node.key is not a copy of --key: %v", err)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	fed := writeFederation(t, dir)
	home := filepath.Join(dir, "home")
	opts := InitOptions{Home: home, Federation: fed, Jurisdiction: "DE"}
	first, err := Init(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Init(opts)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), ConfigFile) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second init: error = %v", err)
	}
	n, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if sk, err := n.LoadKey(); err != nil || !first.MatchesPrivateKey(sk) {
		t.Errorf("second init changed node.key: %v", err)
	}

	// A leftover key without a config is not overwritten either.
	home2 := filepath.Join(dir, "home2")
	if err := os.MkdirAll(home2, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteToken(filepath.Join(home2, DefaultKeyFile)); err != nil {
		t.Fatal(err)
	}
	_, err = Init(InitOptions{Home: home2, Federation: fed, Jurisdiction: "DE"})
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), DefaultKeyFile) {
		t.Errorf("leftover key: error = %v", err)
	}
	assertDirHolds(t, home2, DefaultKeyFile)
}

func TestInitInvalid(t *testing.T) {
	dir := t.TempDir()
	fed := writeFederation(t, dir)
	badFed := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(badFed, []byte(`name = "Bad Name"`), 0o644); err != nil {
		t.Fatal(err)
	}
	openKey := filepath.Join(dir, "open.key")
	sk, _ := GenerateKey()
	if err := WriteKey(openKey, sk); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openKey, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opts InitOptions
		want string
	}{
		{"no home", InitOptions{Federation: fed, Jurisdiction: "DE"}, "home: "},
		{"no federation", InitOptions{Jurisdiction: "DE"}, "federation: "},
		{"missing federation", InitOptions{Federation: filepath.Join(dir, "nope.toml"), Jurisdiction: "DE"}, "nope.toml"},
		{"invalid federation", InitOptions{Federation: badFed, Jurisdiction: "DE"}, badFed + ": name: "},
		{"jurisdiction not in federation", InitOptions{Federation: fed, Jurisdiction: "US"}, `jurisdiction: "US" is not in federation "eu-latam-pilot" (it has DE, FR, BR)`},
		{"bad listen", InitOptions{Federation: fed, Jurisdiction: "DE", Listen: []string{"0.0.0.0:4101"}}, "listen[0]: "},
		{"bad api", InitOptions{Federation: fed, Jurisdiction: "DE", API: "8101"}, "api.listen: "},
		{"open key", InitOptions{Federation: fed, Jurisdiction: "DE", KeyFile: openKey}, "chmod 600"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			if tt.name != "no home" {
				tt.opts.Home = home
			}
			_, err := Init(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(home); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("failed init left %s behind", home)
			}
		})
	}
}
