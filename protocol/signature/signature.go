// Package signature makes and checks the Ed25519 signatures of records.
//
// # Semantics
//
// Verification decides exactly as crypto/ed25519.Verify does, for every
// input: the signature is 64 bytes; S is the canonical encoding of a
// scalar below the group order ℓ (its top three bits clear, then
// S < ℓ); the public key A decodes as the standard library decodes it
// (filippo.io/edwards25519's Point.SetBytes: on the curve, non-canonical
// y accepted, small order accepted); k = SHA-512(R ‖ A ‖ M) mod ℓ over
// the key's bytes as given; and the signature holds when the canonical
// encoding of [S]B − [k]A equals R byte for byte (the cofactorless
// equation, so a non-canonical R never verifies). TestVectorsMatchStdlib
// holds the package to that on the C2SP ed25519 edge-case vectors and
// Wycheproof's EdDSA vectors, and FuzzVerifyMatchesStdlib on whatever a
// fuzzer makes of them. Nodes of one federation must agree on which
// records are validly signed, so this is not a detail: a verifier that
// accepted cofactored-only signatures (ZIP-215) would accept records
// that others refuse.
//
// # Speed
//
// What differs from crypto/ed25519 is speed, for keys that sign often.
// A federation has few issuers — authorities, platforms, regulators,
// nodes — and each signs many records. Keys keeps, for such a key, a
// precomputed table of multiples of −A (curve25519-voi's
// EdwardsBasepointTable, the same fixed-base method the standard library
// uses for B when signing), so that [S]B − [k]A is two fixed-base
// multiplications, with no point doublings, instead of one double-base
// multiplication with 253 of them. The table costs about two
// verifications to build and about 40 KiB to keep; Keys builds it for a
// key's next signature after a valid one, and holds a bounded number.
//
// Sign is RFC 8032 Ed25519 and so deterministic: it returns the same
// bytes as crypto/ed25519.Sign (TestSignMatchesStdlib), from
// curve25519-voi, which is faster at it.
package signature

import (
	"bytes"
	stded25519 "crypto/ed25519"
	"crypto/sha512"
	"sync"

	fedwards "filippo.io/edwards25519"
	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Sizes of keys and signatures, in bytes.
const (
	PublicKeySize  = stded25519.PublicKeySize
	PrivateKeySize = stded25519.PrivateKeySize
	Size           = stded25519.SignatureSize
)

// Sign signs msg with priv (64 bytes: seed then public key, as
// crypto/ed25519 holds it). It panics, as crypto/ed25519.Sign does, if
// priv is not PrivateKeySize bytes.
func Sign(priv stded25519.PrivateKey, msg []byte) []byte {
	if len(priv) != PrivateKeySize {
		panic("signature: private key is not 64 bytes")
	}
	return voied25519.Sign(voied25519.PrivateKey(priv), msg)
}

// Verify reports whether sig is pub's signature of msg: crypto/ed25519's
// Verify, except that a public key of the wrong length is false, not a
// panic.
func Verify(pub, msg, sig []byte) bool {
	if len(pub) != PublicKeySize {
		return false
	}
	return stded25519.Verify(pub, msg, sig)
}

// DefaultKeys is the number of keys a Keys holds tables for when
// NewKeys is given no capacity: 256 keys, about 10 MiB.
const DefaultKeys = 256

// Keys verifies signatures as Verify does, faster for keys it has seen
// before (see the package doc). It is safe for concurrent use. A nil
// *Keys verifies as Verify.
type Keys struct {
	mu       sync.Mutex
	capacity int
	tables   map[[PublicKeySize]byte]*table
	// seen holds keys that made one valid signature, verified without a
	// table: the next signature of such a key builds its table, so a key
	// that signs once costs nothing more than Verify.
	seen map[[PublicKeySize]byte]struct{}
}

// NewKeys returns a Keys holding tables for up to capacity keys
// (DefaultKeys when capacity <= 0).
func NewKeys(capacity int) *Keys {
	if capacity <= 0 {
		capacity = DefaultKeys
	}
	return &Keys{capacity: capacity, tables: map[[PublicKeySize]byte]*table{}, seen: map[[PublicKeySize]byte]struct{}{}}
}

// Len is the number of keys with a table.
func (ks *Keys) Len() int {
	if ks == nil {
		return 0
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return len(ks.tables)
}

// Verify reports whether sig is pub's signature of msg, deciding exactly
// as the package-level Verify does.
func (ks *Keys) Verify(pub, msg, sig []byte) bool {
	if ks == nil || len(pub) != PublicKeySize {
		return Verify(pub, msg, sig)
	}
	key := [PublicKeySize]byte(pub)
	if t := ks.table(key); t != nil {
		return t.verify(msg, sig)
	}
	ok := Verify(pub, msg, sig)
	if ok {
		ks.sawValid(key)
	}
	return ok
}

// sawValid notes a key that made a valid signature: its next one builds
// its table. Only valid signatures count, so that a flood of forged ones
// under fresh keys costs no table builds and evicts no tables.
func (ks *Keys) sawValid(key [PublicKeySize]byte) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if len(ks.seen) >= 4*ks.capacity {
		clear(ks.seen)
	}
	ks.seen[key] = struct{}{}
}

// table returns key's table, building it if key made a valid signature
// before; nil when key is to be verified without one.
func (ks *Keys) table(key [PublicKeySize]byte) *table {
	ks.mu.Lock()
	if t, ok := ks.tables[key]; ok {
		ks.mu.Unlock()
		return t
	}
	if _, ok := ks.seen[key]; !ok {
		ks.mu.Unlock()
		return nil
	}
	ks.mu.Unlock()
	// Build outside the lock: a miss does not hold up other verifications.
	// Two concurrent misses both build; the tables are equal.
	t, ok := newTable(key[:])
	if !ok {
		return nil // Verify will refuse the key, as the standard library does
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if old, ok := ks.tables[key]; ok {
		return old
	}
	for k := range ks.tables {
		if len(ks.tables) < ks.capacity {
			break
		}
		delete(ks.tables, k) // an arbitrary one: map order
	}
	ks.tables[key] = t
	delete(ks.seen, key)
	return t
}

// table is a public key with its precomputed multiples of −A.
type table struct {
	pub  [PublicKeySize]byte
	negA *curve.EdwardsBasepointTable
}

// newTable decodes pub as the standard library does and precomputes
// −A. It reports false when the standard library would refuse pub, or
// when the two curve implementations do not decode it to the same point
// (then the caller verifies without a table).
func newTable(pub []byte) (*table, bool) {
	var std fedwards.Point
	if _, err := std.SetBytes(pub); err != nil {
		return nil, false
	}
	var compressed curve.CompressedEdwardsY
	if _, err := compressed.SetBytes(pub); err != nil {
		return nil, false
	}
	var a curve.EdwardsPoint
	if _, err := a.SetCompressedY(&compressed); err != nil {
		return nil, false
	}
	var again curve.CompressedEdwardsY
	again.SetEdwardsPoint(&a)
	if !bytes.Equal(again[:], std.Bytes()) {
		return nil, false
	}
	a.Neg(&a)
	return &table{pub: [PublicKeySize]byte(pub), negA: curve.NewEdwardsBasepointTable(&a)}, true
}

// verify is crypto/ed25519's verification (see the package doc), step for
// step, with the table's fixed-base multiplication of −A.
func (t *table) verify(msg, sig []byte) bool {
	if len(sig) != Size || sig[63]&224 != 0 {
		return false
	}
	if _, err := fedwards.NewScalar().SetCanonicalBytes(sig[32:]); err != nil {
		return false
	}
	var s, k scalar.Scalar
	if _, err := s.SetBytesModOrder(sig[32:]); err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(t.pub[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	if _, err := k.SetBytesModOrderWide(h.Sum(digest[:0])); err != nil {
		return false
	}
	var sb, ka curve.EdwardsPoint
	sb.MulBasepoint(curve.ED25519_BASEPOINT_TABLE, &s)
	ka.MulBasepoint(t.negA, &k)
	sb.Add(&sb, &ka)
	var r curve.CompressedEdwardsY
	r.SetEdwardsPoint(&sb)
	return bytes.Equal(r[:], sig[:32])
}
