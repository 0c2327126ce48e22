package negentropy

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// fuzzSeeds are the published messages plus hand-made edge cases.
func fuzzSeeds(f *testing.F) {
	f.Helper()
	for name, h := range loadMessages(f) {
		if strings.HasPrefix(name, "initiate-") || strings.HasPrefix(name, "reply-") || strings.HasPrefix(name, "future-") {
			f.Add(unhex(f, h))
		}
	}
	for _, h := range []string{
		"", "61", "60", "6100", "610000", "6100000200", "61000001" + strings.Repeat("ee", 16),
		"610501aa00" + "01019900", "6100000202" + strings.Repeat("42", 64),
		"61000002ffffffffffffffff7f", "6181ffffffffffffffff7e0000" + "050000",
	} {
		f.Add(unhex(f, h))
	}
}

// FuzzDecodeMessage checks that decoding never panics and that a message
// that decodes re-encodes to the same bytes.
func FuzzDecodeMessage(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		ranges, err := decodeMessage(msg)
		if err != nil {
			return
		}
		if got := encodeMessage(ranges); !bytes.Equal(got, msg) {
			t.Fatalf("decode then encode changed the bytes:\n%x\n%x", msg, got)
		}
	})
}

// fuzzVector is a small set with repeated timestamps and shared ID
// prefixes, so arbitrary bounds land between items in every way.
func fuzzVector(f *testing.F) *Vector {
	g := newItemGen(7, 20)
	items := g.items(150)
	g.sharedPrefix = 3
	items = append(items, g.items(50)...)
	return mustVector(f, items)
}

// FuzzReconcile feeds arbitrary bytes to a responder and to an initiator,
// with and without a frame size limit. Neither may panic; whatever they
// answer must decode, fit the limit, and describe their own items truly.
func FuzzReconcile(f *testing.F) {
	fuzzSeeds(f)
	v := fuzzVector(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, limit := range []int{0, MinFrameSizeLimit} {
			res := mustNew(t, v, limit)
			if reply, err := res.Reconcile(msg); err == nil {
				if reply == nil {
					t.Fatal("Reconcile returned nil without an error")
				}
				if limit > 0 && len(reply) > limit {
					t.Fatalf("reply of %d bytes exceeds the limit %d", len(reply), limit)
				}
				if len(reply) > 1 || msg[0] == ProtocolVersion {
					checkHonest(t, v, reply)
				}
			}

			ini := mustNew(t, v, limit)
			if _, err := ini.Initiate(); err != nil {
				t.Fatal(err)
			}
			reply, have, _, done, err := ini.ReconcileInitiator(msg)
			if err != nil {
				continue
			}
			if done != (reply == nil) {
				t.Fatalf("done %v with reply %x", done, reply)
			}
			if reply != nil {
				if limit > 0 && len(reply) > limit {
					t.Fatalf("reply of %d bytes exceeds the limit %d", len(reply), limit)
				}
				checkHonest(t, v, reply)
			}
			ours := idsOf(v.items)
			for _, id := range have {
				if !slices.Contains(ours, id) {
					t.Fatalf("have names %s, which this side does not hold", id)
				}
			}
		}
	})
}
