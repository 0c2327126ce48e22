package negentropy

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// The vectors of testdata/ are published by the negentropy reference
// repository (see testdata/README.md).

func TestPublishedFingerprints(t *testing.T) {
	msgs := loadMessages(t)
	three := []Item{
		{1678011277, mustID(t, "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")},
		{1678011278, mustID(t, "39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0")},
		{1678011279, mustID(t, "abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba")},
	}
	for n, name := range []string{"fingerprint-1", "fingerprint-2", "fingerprint-3"} {
		fp := Fingerprint(three[:n+1])
		if got := hex.EncodeToString(fp[:]); got != msgs[name] {
			t.Errorf("%s: Fingerprint = %s, want %s", name, got, msgs[name])
		}
		if v := mustVector(t, three[:n+1]); v.fingerprint(0, n+1) != fp {
			t.Errorf("%s: Vector fingerprint differs from Fingerprint", name)
		}
	}
}

func TestPublishedBoundEncoding(t *testing.T) {
	msgs := loadMessages(t)
	e := &encoder{}
	for _, ts := range []uint64{1678011277, 1678011278, 1678011279, 1678011280} {
		e.timestamp(ts)
	}
	if got := hex.EncodeToString(e.buf); got != msgs["timestamps"] {
		t.Errorf("timestamps = %s, want %s", got, msgs["timestamps"])
	}
	e = &encoder{}
	e.bound(itemBound(Item{1678011277, mustID(t, "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c")}))
	if got := hex.EncodeToString(e.buf); got != msgs["bound-full-id"] {
		t.Errorf("bound = %s, want %s", got, msgs["bound-full-id"])
	}
}

func TestPublishedInitiate(t *testing.T) {
	msgs := loadMessages(t)
	for _, tc := range []struct{ name, items string }{
		{"initiate-30", "items-30-client.txt"},
		{"initiate-111", "items-111-client.txt"},
		{"initiate-25-js", "items-25-js.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mustNew(t, mustVector(t, loadItems(t, tc.items)), 0).Initiate()
			if err != nil {
				t.Fatal(err)
			}
			if want := msgs[tc.name]; hex.EncodeToString(got) != want {
				t.Errorf("Initiate =\n%x\nwant\n%s", got, want)
			}
		})
	}
	t.Run("initiate-3", func(t *testing.T) {
		var three []Item
		for _, h := range []struct {
			ts uint64
			id string
		}{
			{1678011277, "eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c"},
			{1678011278, "39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0"},
			{1678011279, "abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba"},
		} {
			three = append(three, Item{h.ts, mustID(t, h.id)})
		}
		got, err := mustNew(t, mustVector(t, three), 0).Initiate()
		if err != nil {
			t.Fatal(err)
		}
		if want := msgs["initiate-3"]; hex.EncodeToString(got) != want {
			t.Errorf("Initiate = %x, want %s", got, want)
		}
	})
}

func TestPublishedTwoRounds(t *testing.T) {
	msgs := loadMessages(t)
	client := mustNew(t, mustVector(t, loadItems(t, "items-30-client.txt")), 0)
	server := mustNew(t, mustVector(t, loadItems(t, "items-30-server.txt")), 0)
	init, err := client.Initiate()
	if err != nil {
		t.Fatal(err)
	}
	reply, err := server.Reconcile(init)
	if err != nil {
		t.Fatal(err)
	}
	if want := msgs["reply-30"]; hex.EncodeToString(reply) != want {
		t.Fatalf("server reply =\n%x\nwant\n%s", reply, want)
	}
	next, have, need, done, err := client.ReconcileInitiator(reply)
	if err != nil || !done || next != nil {
		t.Fatalf("ReconcileInitiator: next %x, done %v, err %v; want done", next, done, err)
	}
	// The reference lists have in the client's order and need in the
	// server's; so does this package.
	for _, tc := range []struct {
		name string
		got  []ID
	}{{"have-30", have}, {"need-30", need}} {
		var want []ID
		for _, f := range strings.Fields(msgs[tc.name]) {
			want = append(want, mustID(t, f))
		}
		if !slices.Equal(tc.got, want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, want)
		}
	}
}

func TestPublishedFutureVersion(t *testing.T) {
	msgs := loadMessages(t)
	server := mustNew(t, mustVector(t, loadItems(t, "items-30-server.txt")), 0)
	reply, err := server.Reconcile(unhex(t, msgs["future-version-query"]))
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, msgs["future-version-reply"]); !bytes.Equal(reply, want) {
		t.Errorf("reply = %x, want %x", reply, want)
	}
}

// TestPublishedMessagesRoundTrip decodes every published message and
// encodes it back to the same bytes.
func TestPublishedMessagesRoundTrip(t *testing.T) {
	for name, h := range loadMessages(t) {
		if !strings.HasPrefix(name, "initiate-") && !strings.HasPrefix(name, "reply-") {
			continue
		}
		msg := unhex(t, h)
		ranges, err := decodeMessage(msg)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := encodeMessage(ranges); !bytes.Equal(got, msg) {
			t.Errorf("%s: re-encoded to different bytes", name)
		}
	}
}
