package negentropy

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// FingerprintSize is the length of a range fingerprint in bytes.
const FingerprintSize = 16

// Fingerprint returns the protocol fingerprint of a set of items: the first
// 16 bytes of SHA-256 over the sum of their IDs as little-endian 256-bit
// integers (mod 2^256, 32 bytes little-endian) followed by the varint of
// len(items). Order does not matter; timestamps do not enter it.
func Fingerprint(items []Item) [FingerprintSize]byte {
	var acc accumulator
	for i := range items {
		acc.add(&items[i].ID)
	}
	return acc.fingerprint(uint64(len(items)))
}

// accumulator is a 256-bit sum of IDs, least significant limb first.
type accumulator [4]uint64

func (a *accumulator) add(id *ID) {
	var c uint64
	a[0], c = bits.Add64(a[0], binary.LittleEndian.Uint64(id[0:8]), 0)
	a[1], c = bits.Add64(a[1], binary.LittleEndian.Uint64(id[8:16]), c)
	a[2], c = bits.Add64(a[2], binary.LittleEndian.Uint64(id[16:24]), c)
	a[3], _ = bits.Add64(a[3], binary.LittleEndian.Uint64(id[24:32]), c)
}

func (a *accumulator) fingerprint(count uint64) [FingerprintSize]byte {
	var buf [32 + 10]byte
	for i, limb := range a {
		binary.LittleEndian.PutUint64(buf[8*i:], limb)
	}
	in := appendVarint(buf[:32], count)
	sum := sha256.Sum256(in)
	return [FingerprintSize]byte(sum[:FingerprintSize])
}
