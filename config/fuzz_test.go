package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The parsers never panic, and what they accept survives Marshal unchanged.

func FuzzParseFederation(f *testing.F) {
	f.Add([]byte(newIDs(f).expand(validFederationTOML)))
	f.Add([]byte(`name = "x"` + "\n[[jurisdiction]]\ncode = \"DE\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fed, err := ParseFederation(data)
		if err != nil {
			return
		}
		b, err := fed.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseFederation(b)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(fed, again) {
			t.Fatalf("round trip changed the federation:\n%+v\n%+v", fed, again)
		}
	})
}

func FuzzParseNode(f *testing.F) {
	f.Add([]byte(minimalNodeTOML))
	f.Add([]byte(minimalNodeTOML + "trust = [\"DE\"]\n[gossip]\nsync_interval = \"1m\"\n[limits]\nmax_batch = 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseNode(data)
		if err != nil {
			return
		}
		b, err := n.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseNode(b)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, b)
		}
		if !reflect.DeepEqual(n, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", n, again)
		}
	})
}

// FuzzParseKey: a key file's bytes are an Ed25519 key that marshals back
// to the same bytes, or an error.
func FuzzParseKey(f *testing.F) {
	sk, err := GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	b, err := crypto.MarshalPrivateKey(sk)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKey(data)
		if err != nil {
			return
		}
		if k.Type() != crypto.Ed25519 {
			t.Fatalf("accepted a %s key", k.Type())
		}
		if _, err := peer.IDFromPrivateKey(k); err != nil {
			t.Fatalf("accepted a key without a peer ID: %v", err)
		}
	})
}

// FuzzParseToken: a token file gives a token of printable characters of
// at least 16, or an error.
func FuzzParseToken(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef\n"))
	f.Add([]byte("ent1_short"))
	f.Add([]byte(" \t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := ParseToken(data)
		if err != nil {
			return
		}
		if len(tok) < minTokenLen || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Fatalf("accepted token %q", tok)
		}
	})
}
