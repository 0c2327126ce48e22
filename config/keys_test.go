package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// assertDirHolds checks that dir holds exactly the named files (so no
// temporary file was left behind).
func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		perm os.FileMode
	}{
		{"secret", 0o600},
		{"public", 0o644},
		{"private-dir-readable", 0o640},
	} {
		path := filepath.Join(dir, tt.name)
		if err := WriteFileAtomic(path, []byte("one"), tt.perm); err != nil {
			t.Fatal(err)
		}
		assertMode(t, path, tt.perm)
		// Replacing keeps the requested mode and the new content.
		if err := WriteFileAtomic(path, []byte("two"), tt.perm); err != nil {
			t.Fatal(err)
		}
		assertMode(t, path, tt.perm)
		if b, _ := os.ReadFile(path); string(b) != "two" {
			t.Errorf("%s holds %q after replace", tt.name, b)
		}
	}
	assertDirHolds(t, dir, "private-dir-readable", "public", "secret")

	if err := WriteFileAtomic(filepath.Join(dir, "no", "such", "dir"), nil, 0o600); err == nil {
		t.Error("wrote into a missing directory")
	}
}

func TestWriteFileNewRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := writeFileNew(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileNew(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second write: error = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("file holds %q", b)
	}
	assertDirHolds(t, dir, "f")
}

func TestKeyRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	sk, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if sk.Type() != crypto.Ed25519 {
		t.Fatalf("GenerateKey made a %s key", sk.Type())
	}
	if err := WriteKey(path, sk); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	want, _ := crypto.MarshalPrivateKey(sk)
	if got, _ := os.ReadFile(path); string(got) != string(want) {
		t.Error("key file does not hold crypto.MarshalPrivateKey bytes")
	}
	loaded, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equals(sk) {
		t.Error("loaded key differs from the written one")
	}

	other, _ := GenerateKey()
	if err := WriteKey(path, other); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteKey over an existing key: error = %v, want fs.ErrExist", err)
	}
	if loaded, _ := LoadKey(path); !loaded.Equals(sk) {
		t.Error("WriteKey replaced an existing key")
	}
}

func TestLoadKeyRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.key")
	sk, _ := GenerateKey()
	if err := WriteKey(path, sk); err != nil {
		t.Fatal(err)
	}
	for _, perm := range []os.FileMode{0o644, 0o640, 0o604, 0o620} {
		if err := os.Chmod(path, perm); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(path)
		if err == nil || !strings.Contains(err.Error(), "too open") || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Errorf("mode %04o: error = %v", perm, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestLoadKeyRejects(t *testing.T) {
	dir := t.TempDir()
	secp, _, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secpBytes, _ := crypto.MarshalPrivateKey(secp)
	for _, tt := range []struct {
		name string
		data []byte
		want string
	}{
		{"secp256k1", secpBytes, "want Ed25519"},
		{"garbage", []byte("not a key"), "not a libp2p private key"},
		{"huge", make([]byte, 10000), "larger than"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, tt.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
	if err := WriteKey(filepath.Join(dir, "secp.key"), secp); err == nil {
		t.Error("WriteKey accepted a secp256k1 key")
	}
	if _, err := LoadKey(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing key: error = %v", err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "api-token")
	token, err := WriteToken(path)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	if b, err := hex.DecodeString(token); err != nil || len(b) != 32 {
		t.Errorf("token %q is not 32 bytes of hex", token)
	}
	got, err := LoadToken(path)
	if err != nil || got != token {
		t.Errorf("LoadToken() = %q, %v; want %q", got, err, token)
	}
	if _, err := WriteToken(path); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteToken over an existing token: error = %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("mode 0644: error = %v", err)
	}
}

func TestLoadTokenRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, data, want string }{
		{"empty", "\n", "shorter than"},
		{"short", "secret\n", "shorter than"},
		{"two words", "correct horse battery staple\n", "white space"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadToken(path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.name, err, tt.want)
		}
	}
	path := filepath.Join(dir, "hand-written")
	if err := os.WriteFile(path, []byte("  0123456789abcdef0123  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadToken(path); err != nil || got != "0123456789abcdef0123" {
		t.Errorf("hand-written token: %q, %v", got, err)
	}
}
