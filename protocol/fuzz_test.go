package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// seedRecords returns the golden records and the invalid vectors, the
// seed corpus of the fuzz targets.
func seedRecords(f *testing.F) [][]byte {
	f.Helper()
	var out [][]byte
	var index []goldenEntry
	b, err := os.ReadFile(filepath.Join(goldenDir, "vectors.json"))
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil {
		f.Fatal(err)
	}
	for _, e := range index {
		raw, err := os.ReadFile(filepath.Join(goldenDir, e.Name+".cbor"))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, raw)
	}
	var invalid []invalidVector
	b, err = os.ReadFile(filepath.Join(goldenDir, "invalid.json"))
	if err != nil {
		f.Fatal(err)
	}
	if err := json.Unmarshal(b, &invalid); err != nil {
		f.Fatal(err)
	}
	for _, v := range invalid {
		raw, err := hex.DecodeString(v.Hex)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, raw)
	}
	return out
}

// FuzzDecode: Decode never panics and refuses with an *Error; what it
// accepts is the one encoding of its parts, keeps its CID when decoded
// again, and survives the round trip through its DAG-JSON view.
func FuzzDecode(f *testing.F) {
	for _, b := range seedRecords(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("Decode error without a code: %v", err)
			}
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("Bytes differs from the input")
		}
		// Re-encode from the record's parts.
		body, err := encMode.Marshal(r.Body())
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		again, err := encMode.Marshal(&envelope{
			V: FormatVersion, Kind: r.Kind(), Issuer: r.Issuer().String(), IssuedAt: r.IssuedAt(),
			Body: body, Sig: r.Signature(),
		})
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding the decoded parts gives other bytes:\n in %x\nout %x", b, again)
		}
		r2, err := Decode(r.Bytes())
		if err != nil {
			t.Fatalf("decode again: %v", err)
		}
		if !r2.CID().Equals(r.CID()) || !r.CID().Equals(RecordCID(b)) {
			t.Fatalf("CID changed: %s, %s", r.CID(), r2.CID())
		}
		js, err := CBORToJSON(b)
		if err != nil {
			t.Fatalf("CBORToJSON: %v", err)
		}
		back, err := JSONToCBOR(js)
		if err != nil {
			t.Fatalf("JSONToCBOR(%s): %v", js, err)
		}
		if !bytes.Equal(back, b) {
			t.Fatalf("DAG-JSON round trip changes the bytes:\n in %x\nout %x\njson %s", b, back, js)
		}
		// Parse may refuse (the signature), but never panics.
		_, _ = Parse(b)
	})
}

// FuzzBodyFromJSON: BodyFromJSON never panics; a body it accepts can be
// signed, and comes back unchanged from its own encoding.
func FuzzBodyFromJSON(f *testing.F) {
	for _, g := range goldenRecords(f) {
		js, err := g.rec.BodyJSON()
		if err != nil {
			f.Fatal(err)
		}
		for i, k := range Kinds {
			if k == g.rec.Kind() {
				f.Add(uint8(i), js)
			}
		}
	}
	f.Add(uint8(0), []byte(`{"roles":[],"subject":{"/":"bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}}`))
	f.Add(uint8(2), []byte(`{"subject":{"/":{"bytes":"AAAA"}},"purposes":["a"]}`))
	key := seedKey(seedStranger)
	f.Fuzz(func(t *testing.T, k uint8, js []byte) {
		kind := Kind("opinion")
		if int(k) < len(Kinds) {
			kind = Kinds[k]
		}
		body, err := BodyFromJSON(kind, js)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("BodyFromJSON error without a code: %v", err)
			}
			return
		}
		enc, err := encMode.Marshal(body)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := DecodeBody(kind, enc)
		if err != nil {
			t.Fatalf("DecodeBody of its own encoding: %v", err)
		}
		enc2, _ := encMode.Marshal(again)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("body encoding not stable")
		}
		if _, err := Sign(key, t0, body); err != nil && CodeOf(err) != CodeTooLarge {
			t.Fatalf("Sign refuses a body BodyFromJSON accepted: %v", err)
		}
	})
}

// FuzzLinkUnmarshal: Link.UnmarshalCBOR never panics; a link it accepts
// encodes, and decodes again to the same CID.
func FuzzLinkUnmarshal(f *testing.F) {
	for _, g := range goldenRecords(f) {
		for _, c := range g.rec.Links() {
			b, err := LinkTo(c).MarshalCBOR()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	v0, _ := LinkTo(cidV0).MarshalCBOR()
	f.Add(v0)
	f.Add([]byte{0xd8, 0x2a, 0x41, 0x00})
	f.Add([]byte{0xd8, 0x2b, 0x42, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l Link
		if err := l.UnmarshalCBOR(b); err != nil {
			return
		}
		enc, err := l.MarshalCBOR()
		if err != nil {
			t.Fatalf("MarshalCBOR of a decoded link: %v", err)
		}
		var l2 Link
		if err := l2.UnmarshalCBOR(enc); err != nil {
			t.Fatalf("decode own encoding %x: %v", enc, err)
		}
		if !l2.Equals(l.Cid) {
			t.Fatalf("CID changed: %s, %s", l.Cid, l2.Cid)
		}
		enc2, _ := l2.MarshalCBOR()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("link encoding not stable")
		}
	})
}
