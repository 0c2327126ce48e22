package node

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestCosignatureGolden(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pk, err := crypto.UnmarshalEd25519PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	const fed = "test-fed"
	name := CheckpointOrigin(fed, id)
	body := "entente/test-fed/origin\n7\n" + strings.Repeat("A", 43) + "=\n"
	at := time.Unix(1700000000, 0).UTC()
	line := cosignatureLine(name, key, []byte(body), at)
	const golden = "— entente/test-fed/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB KHu8sQAAAABlU/EAv67fz3300uHLjugHI2kjifcqvkTrB+sa3CbbG+v5eREV4UKjYTS+UvydyNckDYxPu3GauxYAWl36tk+5QayyCA==\n"
	if line != golden {
		t.Errorf("cosignature line\n%s\nwant\n%s", line, golden)
	}
	msg := []byte(body + "\n— entente/test-fed/origin AAAAAA==\n" + line)
	got, err := VerifyCosignature(msg, fed, id)
	if err != nil || !got.Equal(at) {
		t.Fatalf("VerifyCosignature: %v %v", got, err)
	}
	// Tampered body, time, signature; another witness.
	tampered := [][]byte{
		[]byte(strings.Replace(string(msg), "\n7\n", "\n8\n", 1)),
		[]byte(strings.Replace(string(msg), line, line[:len(line)-10]+"AAAAAAAAA\n", 1)),
		[]byte(body + "\n"),
	}
	for i, m := range tampered {
		if _, err := VerifyCosignature(m, fed, id); !errors.Is(err, ErrBadCosignature) {
			t.Errorf("tampered %d: %v", i, err)
		}
	}
	_, other, _ := ed25519.GenerateKey(nil)
	if _, err := VerifyCosignature([]byte(body+"\n"+cosignatureLine(name, other, []byte(body), at)), fed, id); !errors.Is(err, ErrBadCosignature) {
		t.Errorf("another key: %v", err)
	}
	if _, err := VerifyCosignature(msg, "other-fed", id); !errors.Is(err, ErrBadCosignature) {
		t.Errorf("another federation: %v", err)
	}
}
