package node

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// FuzzFetchRequest: the fetch request decoder never panics, and a request
// it accepts re-encodes to the same bytes (it accepts only the canonical
// form).
func FuzzFetchRequest(f *testing.F) {
	c := protocol.RecordCID([]byte("seed"))
	good, err := encodeFetchRequest([]cid.Cid{c, c})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0x80})
	f.Add([]byte{0x9f, 0xff})
	f.Add([]byte{0x81, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		cids, err := decodeFetchRequest(b)
		if err != nil {
			return
		}
		again, err := encodeFetchRequest(cids)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, again)
		}
	})
}

// FuzzFetchFrame: the frame reader never panics and never returns more
// than its limit.
func FuzzFetchFrame(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 10
		frame, err := readFrame(bufio.NewReader(bytes.NewReader(b)), limit)
		if err == nil && len(frame) > limit {
			t.Fatalf("a %d-byte frame past the %d-byte limit", len(frame), limit)
		}
	})
}
