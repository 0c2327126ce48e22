package config

import (
	"reflect"
	"testing"
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
