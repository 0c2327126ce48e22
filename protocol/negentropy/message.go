package negentropy

import (
	"bytes"
	"cmp"
	"math"
)

// ProtocolVersion is the first byte of every version 1 message.
const ProtocolVersion = 0x61

// infinity is the reserved timestamp that ends the last range.
const infinity = math.MaxUint64

type mode uint64

const (
	modeSkip        mode = 0
	modeFingerprint mode = 1
	modeIDList      mode = 2
)

// bound is a range boundary: a timestamp and an ID prefix of prefixLen
// bytes, id holding the prefix followed by zero bytes.
type bound struct {
	timestamp uint64
	prefixLen int
	id        ID
}

var infinityBound = bound{timestamp: infinity}

func compareBounds(a, b bound) int {
	if c := cmp.Compare(a.timestamp, b.timestamp); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// itemBelow reports whether it sorts before b, that is, belongs to a range
// whose upper bound is b or above.
func itemBelow(it Item, b bound) bool {
	if it.Timestamp != b.timestamp {
		return it.Timestamp < b.timestamp
	}
	return bytes.Compare(it.ID[:], b.id[:]) < 0
}

// minimalBound returns the shortest bound above prev and at or below curr
// (prev < curr): an empty prefix if their timestamps differ, else curr's ID
// up to and including the first byte where the IDs differ.
func minimalBound(prev, curr Item) bound {
	if prev.Timestamp != curr.Timestamp {
		return bound{timestamp: curr.Timestamp}
	}
	shared := 0
	for shared < len(curr.ID) && curr.ID[shared] == prev.ID[shared] {
		shared++
	}
	b := bound{timestamp: curr.Timestamp, prefixLen: shared + 1}
	copy(b.id[:b.prefixLen], curr.ID[:])
	return b
}

// itemBound is the bound equal to it, with its whole ID as prefix.
func itemBound(it Item) bound {
	return bound{timestamp: it.Timestamp, prefixLen: len(it.ID), id: it.ID}
}

// msgRange is one decoded range. ids aliases the message (count*32 bytes).
type msgRange struct {
	upper       bound
	mode        mode
	fingerprint [FingerprintSize]byte
	ids         []byte
	idsAt       int // offset of ids in the message, for errors
}

func (r *msgRange) idCount() int { return len(r.ids) / len(ID{}) }

func (r *msgRange) id(i int) (id ID) {
	copy(id[:], r.ids[i*len(id):])
	return id
}

// decoder reads the ranges of one message in order, validating each.
type decoder struct {
	r      reader
	lastTS uint64
	prev   bound
	ended  bool // an infinity bound has been read
}

// newDecoder checks the version byte and positions the decoder on the first
// range.
func newDecoder(msg []byte) (*decoder, error) {
	if len(msg) == 0 {
		return nil, malformed(0, "empty message (no protocol version byte)")
	}
	if msg[0] != ProtocolVersion {
		return nil, malformed(0, "protocol version byte 0x%02x, want 0x%02x", msg[0], ProtocolVersion)
	}
	return &decoder{r: reader{buf: msg, off: 1}}, nil
}

func (d *decoder) more() bool { return d.r.remaining() > 0 }

func (d *decoder) next() (msgRange, error) {
	var rg msgRange
	start := d.r.off
	if d.ended {
		return rg, malformed(start, "range after the infinity bound")
	}
	b, err := d.bound()
	if err != nil {
		return rg, err
	}
	if compareBounds(b, d.prev) < 0 {
		return rg, malformed(start, "bound below the previous bound")
	}
	rg.upper = b
	modeAt := d.r.off
	m, err := d.r.varint()
	if err != nil {
		return rg, err
	}
	rg.mode = mode(m)
	switch rg.mode {
	case modeSkip:
	case modeFingerprint:
		fp, err := d.r.bytes(FingerprintSize, "fingerprint")
		if err != nil {
			return rg, err
		}
		rg.fingerprint = [FingerprintSize]byte(fp)
	case modeIDList:
		countAt := d.r.off
		n, err := d.r.varint()
		if err != nil {
			return rg, err
		}
		if n > uint64(d.r.remaining()/len(ID{})) {
			return rg, malformed(countAt, "IdList of %d IDs but only %d bytes remain", n, d.r.remaining())
		}
		rg.idsAt = d.r.off
		if rg.ids, err = d.r.bytes(int(n)*len(ID{}), "IdList"); err != nil {
			return rg, err
		}
	default:
		return rg, malformed(modeAt, "unknown mode %d", m)
	}
	d.prev = b
	d.ended = b.timestamp == infinity
	return rg, nil
}

func (d *decoder) bound() (bound, error) {
	var b bound
	start := d.r.off
	enc, err := d.r.varint()
	if err != nil {
		return b, err
	}
	if enc == 0 {
		b.timestamp = infinity
	} else {
		ts := d.lastTS + (enc - 1)
		if ts < d.lastTS || ts == infinity {
			return b, malformed(start, "finite timestamp reaches 2^64-1")
		}
		b.timestamp = ts
	}
	d.lastTS = b.timestamp
	lenAt := d.r.off
	n, err := d.r.varint()
	if err != nil {
		return b, err
	}
	if n > uint64(len(b.id)) {
		return b, malformed(lenAt, "ID prefix of %d bytes, at most %d allowed", n, len(b.id))
	}
	if b.timestamp == infinity && n != 0 {
		return b, malformed(lenAt, "infinity bound with a %d-byte ID prefix", n)
	}
	prefix, err := d.r.bytes(int(n), "ID prefix")
	if err != nil {
		return b, err
	}
	b.prefixLen = copy(b.id[:], prefix)
	return b, nil
}

// decodeMessage decodes a whole message. Reconciliation streams ranges
// instead; this exists for tests and fuzzing.
func decodeMessage(msg []byte) ([]msgRange, error) {
	d, err := newDecoder(msg)
	if err != nil {
		return nil, err
	}
	var out []msgRange
	for d.more() {
		rg, err := d.next()
		if err != nil {
			return nil, err
		}
		out = append(out, rg)
	}
	return out, nil
}

// encoder builds one message. Timestamps are delta-encoded from the
// previous bound written, so a partly built message can be cut back only
// with mark and reset.
type encoder struct {
	buf    []byte
	lastTS uint64
}

func newEncoder() *encoder {
	return &encoder{buf: append(make([]byte, 0, 256), ProtocolVersion)}
}

type encoderMark struct {
	n      int
	lastTS uint64
}

func (e *encoder) mark() encoderMark   { return encoderMark{len(e.buf), e.lastTS} }
func (e *encoder) reset(m encoderMark) { e.buf, e.lastTS = e.buf[:m.n], m.lastTS }

// bound writes b, which must not be below the previous bound written.
func (e *encoder) bound(b bound) {
	e.timestamp(b.timestamp)
	e.buf = appendVarint(e.buf, uint64(b.prefixLen))
	e.buf = append(e.buf, b.id[:b.prefixLen]...)
}

// timestamp writes ts as 0 for infinity, else as 1 + its distance from the
// previous timestamp written.
func (e *encoder) timestamp(ts uint64) {
	if ts == infinity {
		e.buf = appendVarint(e.buf, 0)
	} else {
		e.buf = appendVarint(e.buf, ts-e.lastTS+1)
	}
	e.lastTS = ts
}

func (e *encoder) skip(upper bound) {
	e.bound(upper)
	e.buf = appendVarint(e.buf, uint64(modeSkip))
}

func (e *encoder) fingerprint(upper bound, fp [FingerprintSize]byte) {
	e.bound(upper)
	e.buf = appendVarint(e.buf, uint64(modeFingerprint))
	e.buf = append(e.buf, fp[:]...)
}

func (e *encoder) idList(upper bound, items []Item) {
	e.bound(upper)
	e.buf = appendVarint(e.buf, uint64(modeIDList))
	e.buf = appendVarint(e.buf, uint64(len(items)))
	for i := range items {
		e.buf = append(e.buf, items[i].ID[:]...)
	}
}

// encodeMessage is the inverse of decodeMessage.
func encodeMessage(ranges []msgRange) []byte {
	e := newEncoder()
	for _, rg := range ranges {
		e.bound(rg.upper)
		e.buf = appendVarint(e.buf, uint64(rg.mode))
		switch rg.mode {
		case modeFingerprint:
			e.buf = append(e.buf, rg.fingerprint[:]...)
		case modeIDList:
			e.buf = appendVarint(e.buf, uint64(rg.idCount()))
			e.buf = append(e.buf, rg.ids...)
		}
	}
	return e.buf
}
