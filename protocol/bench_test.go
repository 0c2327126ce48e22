package protocol

import (
	"crypto/ed25519"
	"testing"

	"github.com/entente-net/entente/protocol/signature"
)

// The benchmarks run over the golden consent (a typical record) and
// report records per second. BenchmarkEd25519Verify is the floor: a bare
// signature check over a message as long as that record's signing input,
// so that Parse's cost can be read as a multiple of it (DESIGN.md §10).

func benchRecord(b *testing.B) *Record {
	for _, g := range goldenRecords(b) {
		if g.rec.Kind() == KindConsent {
			return g.rec
		}
	}
	b.Fatal("no golden consent")
	return nil
}

func reportRate(b *testing.B, unit string) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, unit)
	}
}

// BenchmarkParse: decode, schema and signature.
func BenchmarkParse(b *testing.B) {
	raw := benchRecord(b).Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "records/s")
}

// BenchmarkDecode: encoding and schema, no signature.
func BenchmarkDecode(b *testing.B) {
	raw := benchRecord(b).Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "records/s")
}

// BenchmarkVerifySignature: the signature check of a decoded record
// (public key recovery, signing input, Ed25519).
func BenchmarkVerifySignature(b *testing.B) {
	r := benchRecord(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.VerifySignature(); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "records/s")
}

// BenchmarkVerifySignatureKeys: the same, with the node's key cache warm
// (the issuer seen before; see package signature).
func BenchmarkVerifySignatureKeys(b *testing.B) {
	r := benchRecord(b)
	keys := signature.NewKeys(0)
	for range 2 {
		if err := r.VerifySignatureWith(keys); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.VerifySignatureWith(keys); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "records/s")
}

// BenchmarkEd25519Verify: bare crypto/ed25519 over a message of the
// record's signing-input size.
func BenchmarkEd25519Verify(b *testing.B) {
	msg := benchRecord(b).SigningInput()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(priv, msg)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("does not verify")
		}
	}
	reportRate(b, "verifies/s")
}

// BenchmarkSign: validate, encode, sign, and decode what was made.
func BenchmarkSign(b *testing.B) {
	key := seedKey(seedControllerDE)
	body := baseConsent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(key, t0, body); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, "records/s")
}

// BenchmarkSignReceipt: a node's receipt, as Sign makes it (the body
// decoded again for the record) and as SignOwned does (the node's path).
func BenchmarkSignReceipt(b *testing.B) {
	key := seedKey(seedNodeDE)
	base := baseReceipt()
	fresh := func() *Receipt { r := *base; return &r } // as a node makes one per decision
	for _, c := range []struct {
		name string
		sign func() (*Record, error)
	}{
		{"Sign", func() (*Record, error) { return Sign(key, t0, fresh()) }},
		{"SignOwned", func() (*Record, error) { return SignOwned(key, t0, fresh()) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.sign(); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, "records/s")
		})
	}
}
