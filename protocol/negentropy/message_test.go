package negentropy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestVarint(t *testing.T) {
	// The first ten are the reference repository's varint vectors.
	for _, tc := range []struct {
		n   uint64
		hex string
	}{
		{0, "00"},
		{1, "01"},
		{2, "02"},
		{127, "7f"},
		{128, "8100"},
		{255, "817f"},
		{256, "8200"},
		{65535, "83ff7f"},
		{65536, "848000"},
		{65537, "848001"},
		{1<<63 - 1, "ffffffffffffffff7f"},
		{math.MaxUint64, "81ffffffffffffffff7f"},
	} {
		got := appendVarint(nil, tc.n)
		if hex.EncodeToString(got) != tc.hex {
			t.Errorf("appendVarint(%d) = %x, want %s", tc.n, got, tc.hex)
		}
		if varintLen(tc.n) != len(got) {
			t.Errorf("varintLen(%d) = %d, want %d", tc.n, varintLen(tc.n), len(got))
		}
		r := reader{buf: got}
		if v, err := r.varint(); err != nil || v != tc.n || r.remaining() != 0 {
			t.Errorf("varint(%s) = %d, %v; want %d", tc.hex, v, err, tc.n)
		}
	}
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct{ hex, reason string }{
		{"", "truncated"},
		{"81", "truncated"},
		{"8000", "non-canonical"},
		{"808001", "non-canonical"},
		{"82808080808080808000", "exceeds 64 bits"}, // 2^64
		{"ffffffffffffffffffff7f", "exceeds 64 bits"},
	} {
		r := reader{buf: unhex(t, tc.hex)}
		_, err := r.varint()
		if err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("varint(%q) error = %v, want %q", tc.hex, err, tc.reason)
		}
	}
}

func TestMinimalBound(t *testing.T) {
	id := func(prefix ...byte) (out ID) {
		copy(out[:], prefix)
		return out
	}
	for _, tc := range []struct {
		name       string
		prev, curr Item
		want       string // encoded alone in a message: timestamp, length, prefix
	}{
		{"timestamps differ", Item{5, id(1)}, Item{7, id(0)}, "08 00"},
		{"first byte differs", Item{5, id(1, 9)}, Item{5, id(2, 0)}, "06 01 02"},
		{"third byte differs", Item{5, id(1, 2, 3)}, Item{5, id(1, 2, 4)}, "06 03 010204"},
		{"last byte differs", Item{0, id()}, Item{0, func() ID { x := id(); x[31] = 1; return x }()},
			"01 20 " + strings.Repeat("00", 31) + "01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := minimalBound(tc.prev, tc.curr)
			if !itemBelow(tc.prev, b) || itemBelow(tc.curr, b) {
				t.Errorf("bound %+v does not separate prev from curr", b)
			}
			e := &encoder{}
			e.bound(b)
			if want := unhex(t, strings.ReplaceAll(tc.want, " ", "")); !bytes.Equal(e.buf, want) {
				t.Errorf("encoded %x, want %x", e.buf, want)
			}
		})
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	fp := strings.Repeat("ee", 16)
	id := strings.Repeat("11", 32)
	for _, tc := range []struct {
		name, hex string
		offset    int
		reason    string
	}{
		{"empty", "", 0, "empty message"},
		{"version 2", "62", 0, "protocol version byte 0x62"},
		{"truncated bound", "6105", 2, "truncated varint"},
		{"truncated prefix", "61050201", 3, "truncated ID prefix"},
		{"prefix too long", "610521", 2, "ID prefix of 33 bytes"},
		{"missing mode", "610500", 3, "truncated varint"},
		{"mode 3 (deprecated)", "61050003", 3, "unknown mode 3"},
		{"mode 4 (continuation)", "61050004", 3, "unknown mode 4"},
		{"non-canonical mode", "6105008001", 3, "non-canonical"},
		{"truncated fingerprint", "61000001eeee", 4, "truncated fingerprint"},
		{"IdList count beyond message", "6100000202" + id, 4, "IdList of 2 IDs but only 32 bytes remain"},
		{"huge IdList count", "61000002ffffffffffffffff7f", 4, "IdList of"},
		{"truncated IdList", "61000002" + "01" + "1111", 4, "IdList of 1 IDs but only 2 bytes remain"},
		{"bound decreases", "610501aa00" + "01019900", 5, "bound below the previous bound"},
		{"finite timestamp reaches infinity", "61020000" + "81ffffffffffffffff7f0000", 4, "reaches 2^64-1"},
		{"timestamp overflows", "61" + "82808080808080808000" + "0000", 1, "exceeds 64 bits"},
		{"delta reaches infinity", "6181ffffffffffffffff7e0000" + "030000", 13, "reaches 2^64-1"},
		{"delta wraps around", "6181ffffffffffffffff7e0000" + "050000", 13, "reaches 2^64-1"},
		{"infinity with prefix", "61000101aa00", 2, "infinity bound with a 1-byte ID prefix"},
		{"range after infinity", "61000000" + "000000", 4, "range after the infinity bound"},
		{"range after infinity fingerprint", "61000001" + fp + "0500" + "00", 20, "range after the infinity bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeMessage(unhex(t, tc.hex))
			var me *MessageError
			if !errors.As(err, &me) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want a *MessageError", err)
			}
			if me.Offset != tc.offset || !strings.Contains(me.Reason, tc.reason) {
				t.Errorf("error = %v, want offset %d and %q", err, tc.offset, tc.reason)
			}
		})
	}
}

func TestDecodeMessageAccepts(t *testing.T) {
	id := strings.Repeat("11", 32)
	for _, tc := range []struct{ name, hex string }{
		{"no ranges", "61"},
		{"implicit trailing skip", "610500" + "01" + strings.Repeat("ee", 16)},
		{"equal bounds (empty range)", "610501aa00" + "0101aa02" + "00"},
		{"same timestamp, longer prefix", "610501aa00" + "0102aa0102" + "01" + id},
		{"full-ID bound ending in zero", "610520" + strings.Repeat("00", 32) + "00"},
		{"empty IdList to infinity", "6100000200"},
		{"IdList of one", "6100000201" + id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := unhex(t, tc.hex)
			ranges, err := decodeMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeMessage(ranges); !bytes.Equal(got, msg) {
				t.Errorf("re-encoded %x, want %x", got, msg)
			}
		})
	}
}
