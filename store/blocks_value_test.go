package store

import (
	"bytes"
	"testing"
)

// A block's value gives back its bytes, whether compressed, kept raw
// (when compression does not pay) or written before values had a form.
func TestBlockValueRoundTrip(t *testing.T) {
	repetitive := bytes.Repeat([]byte("12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw "), 20)
	random := []byte{0xa1, 0x61, 0x78, 0x4f, 0x9c, 0x02, 0xee, 0x17}
	for _, b := range [][]byte{append([]byte{0xa4}, repetitive...), random} {
		v := blockValue(b)
		got, err := blockBytes(v)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("blockBytes(blockValue(%d bytes)) = %d bytes, %v", len(b), len(got), err)
		}
		// Format 3's first values: the bytes as they are.
		if got, err := blockBytes(b); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("a raw value: %d bytes, %v", len(got), err)
		}
	}
	if v := blockValue(append([]byte{0xa4}, repetitive...)); v[0] != blockS2 || len(v) > len(repetitive)/2 {
		t.Fatalf("a repetitive block is stored in %d bytes, form %#x", len(v), v[0])
	}
	if v := blockValue(random); v[0] != blockRaw {
		t.Fatalf("an incompressible block is stored in form %#x", v[0])
	}
	for _, bad := range [][]byte{nil, {blockS2, 0xff, 0xff, 0xff}} {
		if _, err := blockBytes(bad); err == nil {
			t.Fatalf("blockBytes(%x) = no error", bad)
		}
	}
}
