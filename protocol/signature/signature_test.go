package signature

import (
	"bytes"
	"compress/gzip"
	stded25519 "crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	fedwards "filippo.io/edwards25519"
)

// vector is one signature to check, from the files in testdata.
type vector struct {
	name          string
	pub, msg, sig []byte
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func readGzipJSON(t testing.TB, name string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(zr).Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// vectors loads every vector of testdata (see its README).
func vectors(t testing.TB) []vector {
	var out []vector

	var cctv []struct {
		A, R, S, M string
	}
	readGzipJSON(t, "ed25519vectors.json.gz", &cctv)
	for i, v := range cctv {
		out = append(out, vector{name: "cctv/" + strconv.Itoa(i), pub: unhex(t, v.A), msg: []byte(v.M), sig: append(unhex(t, v.R), unhex(t, v.S)...)})
	}

	var wp struct {
		TestGroups []struct {
			Key struct {
				PK string `json:"pk"`
			} `json:"key"`
			Tests []struct {
				ID  int    `json:"tcId"`
				Msg string `json:"msg"`
				Sig string `json:"sig"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	readGzipJSON(t, "eddsa_test.json.gz", &wp)
	for _, g := range wp.TestGroups {
		for _, tc := range g.Tests {
			out = append(out, vector{name: "wycheproof/" + strconv.Itoa(tc.ID), pub: unhex(t, g.Key.PK), msg: unhex(t, tc.Msg), sig: unhex(t, tc.Sig)})
		}
	}

	var spec []struct {
		Message   string `json:"message"`
		PubKey    string `json:"pub_key"`
		Signature string `json:"signature"`
	}
	readGzipJSON(t, "speccheck_cases.json.gz", &spec)
	for i, v := range spec {
		out = append(out, vector{name: "speccheck/" + strconv.Itoa(i), pub: unhex(t, v.PubKey), msg: unhex(t, v.Message), sig: unhex(t, v.Signature)})
	}

	var zip [][2]string
	readGzipJSON(t, "zip215.json.gz", &zip)
	for i, v := range zip {
		out = append(out, vector{name: "zip215/" + strconv.Itoa(i), pub: unhex(t, v[0]), msg: []byte("Zcash"), sig: unhex(t, v[1])})
	}
	return out
}

// stdVerify is the reference: crypto/ed25519 itself (which panics on a
// key of the wrong length; this package says false).
func stdVerify(pub, msg, sig []byte) bool {
	if len(pub) != PublicKeySize {
		return false
	}
	return stded25519.Verify(pub, msg, sig)
}

// checkAgainstStdlib fails t unless every way this package verifies gives
// crypto/ed25519's verdict on (pub, msg, sig).
func checkAgainstStdlib(t testing.TB, name string, pub, msg, sig []byte) bool {
	t.Helper()
	want := stdVerify(pub, msg, sig)
	if got := Verify(pub, msg, sig); got != want {
		t.Errorf("%s: Verify = %v, crypto/ed25519 says %v", name, got, want)
	}
	if len(pub) == PublicKeySize {
		_, stdErr := new(fedwards.Point).SetBytes(pub)
		tbl, ok := newTable(pub)
		switch {
		case ok != (stdErr == nil):
			t.Errorf("%s: the table decodes the key: %v; the standard library: %v", name, ok, stdErr == nil)
		case ok:
			if got := tbl.verify(msg, sig); got != want {
				t.Errorf("%s: table verify = %v, crypto/ed25519 says %v", name, got, want)
			}
		}
	}
	ks := NewKeys(2)
	for i := 0; i < 3; i++ { // unseen, seen once (builds the table), cached
		if got := ks.Verify(pub, msg, sig); got != want {
			t.Errorf("%s: Keys.Verify (call %d) = %v, crypto/ed25519 says %v", name, i+1, got, want)
		}
	}
	return want
}

// TestVectorsMatchStdlib: on every edge case of the C2SP, Wycheproof,
// speccheck and ZIP-215 vectors, this package decides as crypto/ed25519.
func TestVectorsMatchStdlib(t *testing.T) {
	vs := vectors(t)
	valid := 0
	for _, v := range vs {
		if checkAgainstStdlib(t, v.name, v.pub, v.msg, v.sig) {
			valid++
		}
	}
	// The vectors are mostly edge cases the standard library refuses; some
	// it accepts. Both kinds must be there for the test to mean anything.
	if len(vs) < 300 || valid < 50 || len(vs)-valid < 100 {
		t.Fatalf("%d vectors, %d valid: the test data is not what it should be", len(vs), valid)
	}
}

// TestSignMatchesStdlib: Sign gives crypto/ed25519's bytes, and changing
// any bit of the signature, the message or the key changes the verdict
// exactly as it changes the standard library's.
func TestSignMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for i := 0; i < 200; i++ {
		var seed [32]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		priv := stded25519.NewKeyFromSeed(seed[:])
		pub := priv.Public().(stded25519.PublicKey)
		msg := make([]byte, rng.IntN(700))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := Sign(priv, msg)
		if want := stded25519.Sign(priv, msg); !bytes.Equal(sig, want) {
			t.Fatalf("key %d: Sign = %x, crypto/ed25519 = %x", i, sig, want)
		}
		if !checkAgainstStdlib(t, "valid", pub, msg, sig) {
			t.Fatalf("key %d: a fresh signature does not verify", i)
		}
		flip := func(b []byte) []byte {
			c := bytes.Clone(b)
			if len(c) > 0 {
				c[rng.IntN(len(c))] ^= 1 << rng.IntN(8)
			}
			return c
		}
		checkAgainstStdlib(t, "flipped sig", pub, msg, flip(sig))
		checkAgainstStdlib(t, "flipped msg", pub, flip(msg), sig)
		checkAgainstStdlib(t, "flipped key", flip(pub), msg, sig)
	}
}

// TestKeysBound: Keys builds a table on a key's second signature, and
// holds no more than its capacity.
func TestKeysBound(t *testing.T) {
	ks := NewKeys(3)
	for i := 0; i < 10; i++ {
		priv := stded25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		pub := priv.Public().(stded25519.PublicKey)
		sig := Sign(priv, []byte("m"))
		for call := 1; call <= 2; call++ {
			if !ks.Verify(pub, []byte("m"), sig) {
				t.Fatalf("key %d call %d: a valid signature does not verify", i, call)
			}
			if call == 1 && ks.Len() != min(i, 3) {
				t.Fatalf("key %d: after its first signature Keys holds %d tables, want %d", i, ks.Len(), min(i, 3))
			}
		}
		if ks.Len() != min(i+1, 3) {
			t.Fatalf("key %d: Keys holds %d tables, want %d", i, ks.Len(), min(i+1, 3))
		}
	}
	var nilKeys *Keys
	if nilKeys.Len() != 0 || !nilKeys.Verify(pubOf(1), []byte("m"), Sign(privOf(1), []byte("m"))) {
		t.Fatal("a nil *Keys does not verify as Verify")
	}
}

func privOf(b byte) stded25519.PrivateKey {
	return stded25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
}
func pubOf(b byte) stded25519.PublicKey { return privOf(b).Public().(stded25519.PublicKey) }

// FuzzVerifyMatchesStdlib: whatever the key, message and signature, this
// package decides as crypto/ed25519 does.
func FuzzVerifyMatchesStdlib(f *testing.F) {
	for _, v := range vectors(f) {
		f.Add(v.pub, v.msg, v.sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		checkAgainstStdlib(t, "fuzz", pub, msg, sig)
	})
}

func BenchmarkVerify(b *testing.B) {
	priv := privOf(7)
	pub := priv.Public().(stded25519.PublicKey)
	msg := make([]byte, 300)
	sig := Sign(priv, msg)
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if !stded25519.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("keys", func(b *testing.B) {
		ks := NewKeys(0)
		ks.Verify(pub, msg, sig)
		ks.Verify(pub, msg, sig)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if !ks.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("table-build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, ok := newTable(pub); !ok {
				b.Fatal("no table")
			}
		}
	})
}

func BenchmarkSign(b *testing.B) {
	priv := privOf(7)
	msg := make([]byte, 300)
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			stded25519.Sign(priv, msg)
		}
	})
	b.Run("signature", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Sign(priv, msg)
		}
	})
}

// TestKeysIgnoreForgeries: signatures that do not verify never earn a key
// a table, however many there are.
func TestKeysIgnoreForgeries(t *testing.T) {
	ks := NewKeys(4)
	priv := privOf(9)
	pub := priv.Public().(stded25519.PublicKey)
	forged := Sign(priv, []byte("m"))
	forged[0] ^= 1
	for i := 0; i < 10; i++ {
		if ks.Verify(pub, []byte("m"), forged) {
			t.Fatal("a forged signature verifies")
		}
	}
	if ks.Len() != 0 {
		t.Fatalf("forged signatures earned %d table(s)", ks.Len())
	}
	good := Sign(priv, []byte("m"))
	for i := 0; i < 2; i++ {
		if !ks.Verify(pub, []byte("m"), good) {
			t.Fatal("a valid signature does not verify")
		}
	}
	if ks.Len() != 1 {
		t.Fatalf("after two valid signatures the key has %d tables, want 1", ks.Len())
	}
}
