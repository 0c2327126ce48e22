package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// KeyFileMode and TokenFileMode are the modes secrets are written with.
const (
	KeyFileMode   os.FileMode = 0o600
	TokenFileMode os.FileMode = 0o600
)

// maxSecretFileBytes caps what LoadKey and LoadToken read; an Ed25519 key
// file is 68 bytes, a token 65.
const maxSecretFileBytes = 4 << 10

// minTokenLen keeps hand-written tokens from being guessable.
const minTokenLen = 16

// GenerateKey makes a new Ed25519 key.
func GenerateKey() (crypto.PrivKey, error) {
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return sk, nil
}

// WriteKey writes sk to a new file at path, mode 0600, as the bytes of
// crypto.MarshalPrivateKey. It refuses to replace an existing file (the
// error wraps fs.ErrExist): a key written over is an identity lost.
func WriteKey(path string, sk crypto.PrivKey) error {
	if sk.Type() != crypto.Ed25519 {
		return fmt.Errorf("write key %s: %s key, want Ed25519", path, sk.Type())
	}
	data, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		return fmt.Errorf("write key %s: %w", path, err)
	}
	return writeFileNew(path, data, KeyFileMode)
}

// LoadKey reads an Ed25519 key file. Like ssh, it refuses a file that its
// group or others may read or write.
func LoadKey(path string) (crypto.PrivKey, error) {
	data, err := readSecret(path, "key")
	if err != nil {
		return nil, err
	}
	sk, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return sk, nil
}

// ParseKey decodes a key file's bytes: libp2p's MarshalPrivateKey of an
// Ed25519 key.
func ParseKey(data []byte) (crypto.PrivKey, error) {
	sk, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("not a libp2p private key: %w", err)
	}
	if sk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%s key, want Ed25519", sk.Type())
	}
	return sk, nil
}

// WriteToken writes a new API bearer token, 32 random bytes in hex, to a new
// file at path, mode 0600, and returns it. It refuses to replace an existing
// file (the error wraps fs.ErrExist).
func WriteToken(path string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	token := hex.EncodeToString(b[:])
	if err := writeFileNew(path, []byte(token+"\n"), TokenFileMode); err != nil {
		return "", err
	}
	return token, nil
}

// WriteTokenFile writes token to a new file at path, mode 0600, as
// LoadToken reads it. It refuses to replace an existing file (the error
// wraps fs.ErrExist).
func WriteTokenFile(path, token string) error {
	return writeFileNew(path, []byte(token+"\n"), TokenFileMode)
}

// LoadToken reads an API token file: one line, surrounding white space
// ignored, at least 16 characters. Like LoadKey, it refuses a file its group
// or others may read or write.
func LoadToken(path string) (string, error) {
	data, err := readSecret(path, "token")
	if err != nil {
		return "", err
	}
	token, err := ParseToken(data)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	return token, nil
}

// ParseToken decodes a token file's bytes: one token, surrounding white
// space ignored, at least 16 characters, none of them white space or
// control characters.
func ParseToken(data []byte) (string, error) {
	token := strings.TrimSpace(string(data))
	if len(token) < minTokenLen {
		return "", fmt.Errorf("token shorter than %d characters", minTokenLen)
	}
	if strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", errors.New("token holds white space or control characters")
	}
	return token, nil
}

// readSecret reads a small secret file after checking its mode.
func readSecret(path, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s file %s: not a regular file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s file %s: permissions %04o are too open: it must not be accessible by group or others (run chmod 600 %s)",
			what, path, perm, path)
	}
	data, err := readCapped(path, maxSecretFileBytes)
	if err != nil {
		return nil, fmt.Errorf("%s file: %w", what, err)
	}
	return data, nil
}
