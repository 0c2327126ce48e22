package negentropy

// appendVarint appends n as a varint: base-128 digits, most significant
// first, the high bit set on all but the last byte.
func appendVarint(b []byte, n uint64) []byte {
	var digits [10]byte
	i := len(digits) - 1
	digits[i] = byte(n & 0x7f)
	for n >>= 7; n != 0; n >>= 7 {
		i--
		digits[i] = byte(n&0x7f) | 0x80
	}
	return append(b, digits[i:]...)
}

// varintLen is the number of bytes appendVarint writes for n.
func varintLen(n uint64) int {
	l := 1
	for n >>= 7; n != 0; n >>= 7 {
		l++
	}
	return l
}

// reader consumes a message from the front, recording where each failure
// happened.
type reader struct {
	buf []byte
	off int
}

func (r *reader) remaining() int { return len(r.buf) - r.off }

// varint reads one canonical varint.
func (r *reader) varint() (uint64, error) {
	start := r.off
	var v uint64
	for {
		if r.off >= len(r.buf) {
			return 0, malformed(start, "truncated varint")
		}
		c := r.buf[r.off]
		if r.off == start && c == 0x80 {
			return 0, malformed(start, "non-canonical varint (leading zero digit)")
		}
		if v>>57 != 0 {
			return 0, malformed(start, "varint exceeds 64 bits")
		}
		r.off++
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// bytes returns the next n bytes, aliasing the message.
func (r *reader) bytes(n int, what string) ([]byte, error) {
	if n < 0 || n > r.remaining() {
		return nil, malformed(r.off, "truncated %s", what)
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}
