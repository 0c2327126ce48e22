package protocol

import (
	"bytes"
	"testing"
)

// FuzzRecordFromJSON: a whole record's DAG-JSON view (what `record
// submit` reads from files) parses to a record whose view is the input's
// meaning, or an error with a code — never a panic.
func FuzzRecordFromJSON(f *testing.F) {
	for _, g := range goldenRecords(f) {
		js, err := g.rec.JSON()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(`{"kind":"consent"}`))
	f.Add([]byte(`{"sig":{"/":{"bytes":"AAAA"}}}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		r, err := RecordFromJSON(js)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("RecordFromJSON error without a code: %v", err)
			}
			return
		}
		again, err := Decode(r.Bytes())
		if err != nil || again.CID() != r.CID() {
			t.Fatalf("a record parsed from JSON does not decode from its own bytes: %v", err)
		}
		view, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		back, err := RecordFromJSON(view)
		if err != nil || !bytes.Equal(back.Bytes(), r.Bytes()) {
			t.Fatalf("the record's own view does not parse back to it: %v", err)
		}
	})
}

// FuzzCheckpointRequest: the witness protocol's request decodes to a
// tree size that encodes back to the same bytes, or an error.
func FuzzCheckpointRequest(f *testing.F) {
	for _, b := range wireSeeds(f, "checkpoint-request", "checkpoint-request", "checkpoint-request-first") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		size, err := DecodeCheckpointRequest(b)
		if err != nil {
			return
		}
		if enc := EncodeCheckpointRequest(size); !bytes.Equal(enc, b) {
			t.Fatalf("DecodeCheckpointRequest(%x) = %d, which encodes as %x", b, size, enc)
		}
	})
}
