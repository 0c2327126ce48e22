package protocol

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The wire vectors of the package doc ("Wire protocols", "Checkpoints and
// cosignatures") live in testdata/wire: vectors.json, messages a node
// writes, each with the inputs it encodes; invalid.json, bytes each
// decoder must refuse. Regenerate with: go test ./protocol -run Golden -update

const wireDir = "testdata/wire"

// wireVector is one entry of testdata/wire/vectors.json.
type wireVector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Hex         string `json:"hex,omitempty"`
	Text        string `json:"text,omitempty"` // for text formats (notes, keys)
}

// wireInvalid is one entry of testdata/wire/invalid.json: bytes that the
// decoder Decoder must refuse.
type wireInvalid struct {
	Name    string `json:"name"`
	Decoder string `json:"decoder"`
	Why     string `json:"why"`
	Hex     string `json:"hex"`
}

// exampleNodeKey is the example node of the package doc: the Ed25519 key
// whose seed is the bytes 0, 1, ..., 31.
func exampleNodeSeed() []byte {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	return seed
}

const exampleFederation = "eu-latam-pilot"

// exampleCheckpoint is the doc's checkpoint: the example node's tree of
// size 3 whose root is the RFC 6962 hash of the leaves "a", "b", "c".
func exampleCheckpoint(t testing.TB) (*CheckpointSigner, SignedCheckpoint) {
	key := keyFromSeed(exampleNodeSeed())
	s, err := NewCheckpointSigner(exampleFederation, key)
	if err != nil {
		t.Fatal(err)
	}
	root := tlog.NodeHash(tlog.NodeHash(tlog.RecordHash([]byte("a")), tlog.RecordHash([]byte("b"))), tlog.RecordHash([]byte("c")))
	sc, err := s.Sign(LogCheckpoint{Origin: s.Name(), Size: 3, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return s, sc
}

// exampleCosigned is the doc's checkpoint cosigned by the DE node of the
// golden records (seed 0x03) at 2023-11-14T22:13:20Z.
func exampleCosigned(t testing.TB) []byte {
	_, sc := exampleCheckpoint(t)
	w, err := NewCheckpointSigner(exampleFederation, seedKey(seedNodeDE))
	if err != nil {
		t.Fatal(err)
	}
	nt, err := note.Open(sc.Note, note.VerifierList(mustVerifier(t, exampleFederation, keyID(keyFromSeed(exampleNodeSeed())))))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := w.Cosign(nt, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func mustVerifier(t testing.TB, fed string, id interface{ String() string }) note.Verifier {
	t.Helper()
	pid, err := ParsePeerID(id.String())
	if err != nil {
		t.Fatal(err)
	}
	v, err := CheckpointVerifier(fed, pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wireVectors(t testing.TB) []wireVector {
	recs := goldenRecords(t)
	acc, consent := recs[0].rec, recs[2].rec
	s, sc := exampleCheckpoint(t)
	vkey, err := CheckpointVerifierKey(exampleFederation, keyID(keyFromSeed(exampleNodeSeed())))
	if err != nil {
		t.Fatal(err)
	}
	cosigned := exampleCosigned(t)
	req, err := EncodeFetchRequest([]cid.Cid{acc.CID(), consent.CID()})
	if err != nil {
		t.Fatal(err)
	}
	proof := tlog.TreeProof{tlog.RecordHash([]byte("d")), tlog.RecordHash([]byte("e"))}
	answer, err := EncodeCheckpointAnswer(sc.Note, proof)
	if err != nil {
		t.Fatal(err)
	}
	cosign, err := EncodeCosignRequest(cosigned)
	if err != nil {
		t.Fatal(err)
	}
	witnessedReq, err := EncodeWitnessedRequest(keyID(keyFromSeed(exampleNodeSeed())))
	if err != nil {
		t.Fatal(err)
	}
	witnessed, err := EncodeWitnessedAnswer(cosigned)
	if err != nil {
		t.Fatal(err)
	}
	witnessedNone, err := EncodeWitnessedAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	decision, decisionCID := goldenDecision(t, recs[2].rec, recs[0].rec)
	incident := recs[4].rec
	deliverReq, err := EncodeDeliverRequest(incident.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	receipt := recs[len(recs)-1].rec
	deliverReceipt, err := EncodeDeliverRequest(receipt.Bytes(), decision)
	if err != nil || receipt.Kind() != KindReceipt {
		t.Fatalf("the golden receipt's delivery: %v (%s)", err, receipt.Kind())
	}
	ackInput, ack := exampleDeliveryAck(t)
	ackAnswer, err := EncodeDeliverAnswer(&ack)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := EncodeDeliverAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return []wireVector{
		{Name: "decision-block", Description: "the decision block the golden receipt signs, CID " + decisionCID.String(), Hex: hex.EncodeToString(decision)},
		{Name: "checkpoint-text", Description: "the note text of the example node's checkpoint of size 3", Text: sc.Text()},
		{Name: "checkpoint-verifier-key", Description: "the example node's checkpoint verifier key (note.NewVerifier)", Text: vkey},
		{Name: "checkpoint-note", Description: "the example checkpoint, signed by " + s.Name(), Text: string(sc.Note)},
		{Name: "checkpoint-cosigned", Description: "the example checkpoint cosigned (cosignature/v1) by the golden DE node (seed 0x03) at 1700000000", Text: string(cosigned)},
		{Name: "fetch-request", Description: "a fetch request frame for the golden accreditation and consent", Hex: hex.EncodeToString(AppendFrame(nil, req))},
		{Name: "fetch-answer-record", Description: "a fetch answer frame holding the golden accreditation", Hex: hex.EncodeToString(AppendFetchAnswer(nil, acc.Bytes()))},
		{Name: "fetch-answer-not-held", Description: "a fetch answer frame: not held", Hex: hex.EncodeToString(AppendFetchAnswer(nil, nil))},
		{Name: "sync-all-record", Description: "a sync-all frame holding the golden consent", Hex: hex.EncodeToString(AppendFrame(nil, consent.Bytes()))},
		{Name: "checkpoint-request", Description: "a checkpoint request by a witness that verified size 3", Hex: hex.EncodeToString(EncodeCheckpointRequest(3))},
		{Name: "checkpoint-request-first", Description: "a checkpoint request by a witness that verified none", Hex: hex.EncodeToString(EncodeCheckpointRequest(0))},
		{Name: "checkpoint-answer", Description: "an answer: the example checkpoint note and a two-hash proof (RecordHash of \"d\" and \"e\")", Hex: hex.EncodeToString(answer)},
		{Name: "checkpoint-answer-empty-log", Description: "the answer of a node whose log is empty", Hex: hex.EncodeToString(mustAnswer(t, nil, nil))},
		{Name: "cosign-request", Description: "a cosign request returning the cosigned example checkpoint", Hex: hex.EncodeToString(cosign)},
		{Name: "cosign-answer-kept", Description: "the log kept the cosignature", Hex: hex.EncodeToString([]byte{byte(CosignKept)})},
		{Name: "witnessed-request", Description: "a witnessed request for the example node's log", Hex: hex.EncodeToString(witnessedReq)},
		{Name: "witnessed-answer", Description: "a witness's answer: the example checkpoint, with its cosignature", Hex: hex.EncodeToString(witnessed)},
		{Name: "witnessed-answer-none", Description: "the answer of a witness that verified no checkpoint of that log", Hex: hex.EncodeToString(witnessedNone)},
		{Name: "deliver-request", Description: "a delivery request pushing the golden incident", Hex: hex.EncodeToString(deliverReq)},
		{Name: "deliver-request-receipt", Description: "a delivery request pushing the golden receipt with a decision block (the golden decision), as a receipt's push carries the blocks of the receiver's jurisdiction", Hex: hex.EncodeToString(deliverReceipt)},
		{Name: "deliver-ack-input", Description: "what the golden DE node (seed 0x03) signs to acknowledge the golden incident for DE at 1700000000000", Hex: hex.EncodeToString(ackInput)},
		{Name: "deliver-answer-ack", Description: "the answer carrying that acknowledgement", Hex: hex.EncodeToString(ackAnswer)},
		{Name: "deliver-answer-refused", Description: "the answer of a node that refuses the record", Hex: hex.EncodeToString(refused)},
	}
}

// exampleDeliveryAck is the acknowledgement of the vectors: the golden DE
// node (seed 0x03) acknowledges the golden incident for DE at
// 1700000000000, with its signing input.
func exampleDeliveryAck(t testing.TB) ([]byte, DeliveryAck) {
	incident := goldenRecords(t)[4].rec
	input, err := DeliveryAckInput(incident.CID(), "DE", 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := SignDeliveryAck(seedKey(seedNodeDE), incident.CID(), "DE", 1700000000000)
	if err != nil {
		t.Fatal(err)
	}
	return input, ack
}

func mustAnswer(t testing.TB, note []byte, proof tlog.TreeProof) []byte {
	b, err := EncodeCheckpointAnswer(note, proof)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wireDecoders are the decoders of invalid.json, by name; each returns
// the error it refuses the bytes with.
var wireDecoders = map[string]func([]byte) error{
	"frame": func(b []byte) error {
		r := bufio.NewReader(bytes.NewReader(b))
		if _, err := ReadFrame(r, 16); err != nil {
			return err
		}
		if _, err := r.ReadByte(); err != io.EOF {
			return errors.New("trailing bytes")
		}
		return nil
	},
	"fetch-request": func(b []byte) error { _, err := DecodeFetchRequest(b); return err },
	"fetch-answer":  func(b []byte) error { _, _, err := DecodeFetchAnswer(b); return err },
	"checkpoint-request": func(b []byte) error {
		_, err := DecodeCheckpointRequest(b)
		return err
	},
	"checkpoint-answer": func(b []byte) error { _, _, err := DecodeCheckpointAnswer(b); return err },
	"cosign-request":    func(b []byte) error { _, err := DecodeCosignRequest(b); return err },
	"cosign-answer":     func(b []byte) error { _, err := DecodeCosignAnswer(b); return err },
	"witnessed-request": func(b []byte) error { _, err := DecodeWitnessedRequest(b); return err },
	"witnessed-answer":  func(b []byte) error { _, err := DecodeWitnessedAnswer(b); return err },
	"checkpoint-text":   func(b []byte) error { _, err := ParseCheckpoint(string(b)); return err },
	"decision-block":    func(b []byte) error { _, err := DecodeDecisionBlock(b); return err },
	"deliver-request":   func(b []byte) error { _, _, err := DecodeDeliverRequest(b); return err },
	"deliver-answer": func(b []byte) error {
		ack, err := DecodeDeliverAnswer(RecordCID([]byte("r")), b)
		if err == nil && ack == nil {
			return errors.New("a refusal") // no invalid vector is a refusal: this decoder must fail
		}
		return err
	},
}

func wireInvalids(t testing.TB) []wireInvalid {
	recs := goldenRecords(t)
	c := recs[0].rec.CID()
	good, err := EncodeFetchRequest([]cid.Cid{c})
	if err != nil {
		t.Fatal(err)
	}
	root := tlog.RecordHash([]byte("r")).String()
	_, sc := exampleCheckpoint(t)
	answer := mustAnswer(t, sc.Note, tlog.TreeProof{tlog.RecordHash([]byte("d"))})
	h := func(s string) string { return hex.EncodeToString([]byte(s)) }
	cat := func(parts ...[]byte) string { return hex.EncodeToString(bytes.Join(parts, nil)) }
	v0 := cid.NewCidV0(c.Hash())
	decision := func(mut func(*DecisionBlock)) string {
		b := baseDecision()
		mut(b)
		enc, err := encMode.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(enc)
	}
	_, ack := exampleDeliveryAck(t)
	ackAnswer, err := EncodeDeliverAnswer(&ack)
	if err != nil {
		t.Fatal(err)
	}
	withByte := func(i int, v byte) string {
		b := bytes.Clone(ackAnswer)
		b[i] = v
		return hex.EncodeToString(b)
	}
	return []wireInvalid{
		{"deliver-request-empty", "deliver-request", "a frame of length 0", "00"},
		{"deliver-request-trailing", "deliver-request", "a byte after the frame: a frame of length 0, which no decision block is", "0161" + "00"},
		{"deliver-request-non-minimal", "deliver-request", "the length 1 written in two bytes", "810061"},
		{"deliver-request-cut-short", "deliver-request", "fewer bytes than the length says", "0361"},
		{"deliver-request-too-large", "deliver-request", "a length over MaxRecordSize", "8180040000"},
		{"deliver-answer-empty", "deliver-answer", "no status", ""},
		{"deliver-answer-status", "deliver-answer", "status 2", withByte(0, 0x02)},
		{"deliver-answer-refused-trailing", "deliver-answer", "a refusal with a byte after it", "0100"},
		{"deliver-answer-code-length", "deliver-answer", "a code length of 3", withByte(1, 0x03)},
		{"deliver-answer-code-lower-case", "deliver-answer", "a lower-case code", withByte(2, 'd')},
		{"deliver-answer-time-negative", "deliver-answer", "a time with its top bit set", withByte(4, 0x80)},
		{"deliver-answer-short", "deliver-answer", "the signature cut short", hex.EncodeToString(ackAnswer[:len(ackAnswer)-1])},
		{"deliver-answer-trailing", "deliver-answer", "a byte after the signature", cat(ackAnswer, []byte{0x00})},
		{"decision-block-no-reason", "decision-block", "a failing check without its reason", decision(func(b *DecisionBlock) { b.Verdict, b.Checks[2].OK = VerdictDeny, false })},
		{"decision-block-reason-of-another-check", "decision-block", "consent.live failing for a purpose", decision(func(b *DecisionBlock) {
			b.Verdict, b.Checks[2].OK, b.Checks[2].Reason = VerdictDeny, false, ReasonPurpose
		})},
		{"decision-block-verdict", "decision-block", "deny with every check passed", decision(func(b *DecisionBlock) { b.Verdict = VerdictDeny })},
		{"decision-block-trailing", "decision-block", "a byte after the block", decision(func(*DecisionBlock) {}) + "00"},
		{"frame-varint-non-minimal", "frame", "the length 1 written in two bytes", "810061"},
		{"frame-empty", "frame", "a frame of length 0", "00"},
		{"frame-too-large", "frame", "a length over the limit (17 > 16)", "11" + strings.Repeat("61", 17)},
		{"frame-varint-ten-bytes", "frame", "a varint longer than 9 bytes", "ffffffffffffffffff01"},
		{"frame-cut-short", "frame", "fewer bytes than the length says", "0361"},
		{"fetch-request-empty", "fetch-request", "an empty array", "80"},
		{"fetch-request-long-head", "fetch-request", "the array's length in a non-minimal head", cat([]byte{0x98, 0x01}, good[1:])},
		{"fetch-request-indefinite", "fetch-request", "an indefinite-length array", cat([]byte{0x9f}, good[1:], []byte{0xff})},
		{"fetch-request-text", "fetch-request", "a CID as a text string", cat([]byte{0x81, 0x78, byte(len(c.String()))}, []byte(c.String()))},
		{"fetch-request-cidv0", "fetch-request", "a CIDv0, not a record ID", cat([]byte{0x81, 0x58, byte(len(v0.Bytes()))}, v0.Bytes())},
		{"fetch-request-trailing", "fetch-request", "a byte after the array", cat(good, []byte{0x00})},
		{"fetch-request-cid-trailing", "fetch-request", "a CID with a byte after it", cat([]byte{0x81, 0x58, 37}, c.Bytes(), []byte{0x00})},
		{"fetch-answer-status", "fetch-answer", "status 2", "02"},
		{"fetch-answer-record-empty", "fetch-answer", "status 0 without a record", "00"},
		{"fetch-answer-not-held-trailing", "fetch-answer", "status 1 with a byte after it", "0100"},
		{"checkpoint-request-empty", "checkpoint-request", "no varint", ""},
		{"checkpoint-request-non-minimal", "checkpoint-request", "3 written in two bytes", "8300"},
		{"checkpoint-request-trailing", "checkpoint-request", "a byte after the varint", "0300"},
		{"checkpoint-request-too-large", "checkpoint-request", "2^63, beyond any tree", "808080808080808080"},
		{"checkpoint-answer-non-minimal", "checkpoint-answer", "the note length in a non-minimal varint", "800000"},
		{"checkpoint-answer-proof-short", "checkpoint-answer", "a proof count of 2 with one hash", hex.EncodeToString(append(answer[:len(answer)-33], append([]byte{0x02}, answer[len(answer)-32:]...)...))},
		{"checkpoint-answer-trailing", "checkpoint-answer", "a byte after the proof", cat(answer, []byte{0x00})},
		{"checkpoint-answer-proof-too-long", "checkpoint-answer", "a proof count of 65", "0041"},
		{"cosign-request-empty", "cosign-request", "no note", "00"},
		{"cosign-request-trailing", "cosign-request", "a byte after the note", cat(AppendFrame(nil, sc.Note), []byte{0x00})},
		{"cosign-answer-unknown", "cosign-answer", "answer 3", "03"},
		{"cosign-answer-two-bytes", "cosign-answer", "two bytes", "0000"},
		{"witnessed-request-empty", "witnessed-request", "a frame of length 0", "00"},
		{"witnessed-request-not-a-peer-id", "witnessed-request", "a frame of bytes that are no multihash", "03616263"},
		{"witnessed-request-sha256-peer-id", "witnessed-request", "a peer ID hashing its key (an RSA key's form), not an Ed25519 key", cat([]byte{0x22, 0x12, 0x20}, bytes.Repeat([]byte{0x11}, 32))},
		{"witnessed-request-trailing", "witnessed-request", "a byte after the frame", cat(AppendFrame(nil, []byte(keyID(keyFromSeed(exampleNodeSeed())))), []byte{0x00})},
		{"witnessed-answer-empty", "witnessed-answer", "no varint", ""},
		{"witnessed-answer-non-minimal", "witnessed-answer", "the length 0 written in two bytes", "8000"},
		{"witnessed-answer-cut-short", "witnessed-answer", "fewer bytes than the length says", "0361"},
		{"witnessed-answer-trailing", "witnessed-answer", "a byte after the note", cat(AppendFrame(nil, sc.Note), []byte{0x00})},
		{"witnessed-answer-too-large", "witnessed-answer", "a length over MaxCheckpointNote", "818002"},
		{"checkpoint-text-no-newline", "checkpoint-text", "no final newline", h("o\n1\n" + root)},
		{"checkpoint-text-extension", "checkpoint-text", "an extension line", h("o\n1\n" + root + "\next\n")},
		{"checkpoint-text-size-zero-padded", "checkpoint-text", "a non-canonical size", h("o\n01\n" + root + "\n")},
		{"checkpoint-text-size-signed", "checkpoint-text", "a signed size", h("o\n+1\n" + root + "\n")},
		{"checkpoint-text-size-too-large", "checkpoint-text", "a size beyond int64", h("o\n9223372036854775808\n" + root + "\n")},
		{"checkpoint-text-root-unpadded", "checkpoint-text", "an unpadded root", h("o\n1\n" + root[:43] + "\n")},
		{"checkpoint-text-root-short", "checkpoint-text", "a root of 3 bytes", h("o\n1\nAAAA\n")},
		{"checkpoint-text-origin-space", "checkpoint-text", "an origin with a space", h("o p\n1\n" + root + "\n")},
		{"checkpoint-text-origin-plus", "checkpoint-text", "an origin with a plus", h("o+p\n1\n" + root + "\n")},
		{"checkpoint-text-origin-empty", "checkpoint-text", "an empty origin", h("\n1\n" + root + "\n")},
		{"checkpoint-text-origin-long", "checkpoint-text", "an origin of 129 bytes", h(strings.Repeat("o", 129) + "\n1\n" + root + "\n")},
	}
}

func TestGoldenWire(t *testing.T) {
	vectors, invalid := wireVectors(t), wireInvalids(t)
	if *update {
		writeJSON(t, filepath.Join(wireDir, "vectors.json"), vectors)
		writeJSON(t, filepath.Join(wireDir, "invalid.json"), invalid)
	}
	var gotV []wireVector
	readJSON(t, filepath.Join(wireDir, "vectors.json"), &gotV)
	if len(gotV) != len(vectors) {
		t.Fatalf("%d wire vectors in testdata, the code makes %d (go test ./protocol -run Golden -update)", len(gotV), len(vectors))
	}
	for i, v := range vectors {
		if gotV[i] != v {
			t.Errorf("wire vector %s: testdata has\n%+v\nthe code makes\n%+v", v.Name, gotV[i], v)
		}
	}
	var gotI []wireInvalid
	readJSON(t, filepath.Join(wireDir, "invalid.json"), &gotI)
	if len(gotI) != len(invalid) {
		t.Fatalf("%d invalid wire vectors in testdata, the code makes %d", len(gotI), len(invalid))
	}
	for i, v := range gotI {
		if v != invalid[i] {
			t.Errorf("invalid wire vector %s differs from the code's", v.Name)
		}
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		dec, ok := wireDecoders[v.Decoder]
		if !ok {
			t.Fatalf("%s: no decoder %q", v.Name, v.Decoder)
		}
		if err := dec(b); err == nil {
			t.Errorf("%s: the %s decoder accepted %s (%s)", v.Name, v.Decoder, v.Hex, v.Why)
		}
	}
}

// TestWireVectorsDecode: every vector decodes to what it encodes.
func TestWireVectorsDecode(t *testing.T) {
	recs := goldenRecords(t)
	byName := map[string]wireVector{}
	for _, v := range wireVectors(t) {
		byName[v.Name] = v
	}
	bin := func(name string) []byte {
		b, err := hex.DecodeString(byName[name].Hex)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	frame := func(name string) []byte {
		b, err := ReadFrame(bufio.NewReader(bytes.NewReader(bin(name))), FetchMaxAnswer)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	cids, err := DecodeFetchRequest(frame("fetch-request"))
	if err != nil || len(cids) != 2 || !cids[0].Equals(recs[0].rec.CID()) || !cids[1].Equals(recs[2].rec.CID()) {
		t.Errorf("fetch-request decodes to %v, %v", cids, err)
	}
	if rec, held, err := DecodeFetchAnswer(frame("fetch-answer-record")); err != nil || !held || !bytes.Equal(rec, recs[0].rec.Bytes()) {
		t.Errorf("fetch-answer-record: %v %v", held, err)
	}
	if _, held, err := DecodeFetchAnswer(frame("fetch-answer-not-held")); err != nil || held {
		t.Errorf("fetch-answer-not-held: %v %v", held, err)
	}
	if size, err := DecodeCheckpointRequest(bin("checkpoint-request")); err != nil || size != 3 {
		t.Errorf("checkpoint-request: %d %v", size, err)
	}
	nt, proof, err := DecodeCheckpointAnswer(bin("checkpoint-answer"))
	if err != nil || string(nt) != byName["checkpoint-note"].Text || len(proof) != 2 || proof[1] != tlog.RecordHash([]byte("e")) {
		t.Errorf("checkpoint-answer: %q %v %v", nt, proof, err)
	}
	if nt, proof, err := DecodeCheckpointAnswer(bin("checkpoint-answer-empty-log")); err != nil || nt != nil || len(proof) != 0 {
		t.Errorf("checkpoint-answer-empty-log: %q %v %v", nt, proof, err)
	}
	if nt, err := DecodeCosignRequest(bin("cosign-request")); err != nil || string(nt) != byName["checkpoint-cosigned"].Text {
		t.Errorf("cosign-request: %v", err)
	}
	if a, err := DecodeCosignAnswer(bin("cosign-answer-kept")); err != nil || a != CosignKept {
		t.Errorf("cosign-answer-kept: %v %v", a, err)
	}
	if id, err := DecodeWitnessedRequest(bin("witnessed-request")); err != nil || id != keyID(keyFromSeed(exampleNodeSeed())) {
		t.Errorf("witnessed-request: %s %v", id, err)
	}
	if nt, err := DecodeWitnessedAnswer(bin("witnessed-answer")); err != nil || string(nt) != byName["checkpoint-cosigned"].Text {
		t.Errorf("witnessed-answer: %q %v", nt, err)
	}
	if nt, err := DecodeWitnessedAnswer(bin("witnessed-answer-none")); err != nil || nt != nil {
		t.Errorf("witnessed-answer-none: %q %v", nt, err)
	}
	incident := recs[4].rec
	if rec, blocks, err := DecodeDeliverRequest(bin("deliver-request")); err != nil || !bytes.Equal(rec, incident.Bytes()) || len(blocks) != 0 {
		t.Errorf("deliver-request: %v", err)
	}
	ack, err := DecodeDeliverAnswer(incident.CID(), bin("deliver-answer-ack"))
	if err != nil || ack == nil || ack.Jurisdiction != "DE" || ack.At != 1700000000000 {
		t.Fatalf("deliver-answer-ack: %+v %v", ack, err)
	}
	if err := ack.Verify(keyID(seedKey(seedNodeDE))); err != nil {
		t.Errorf("deliver-answer-ack does not verify against the DE node: %v", err)
	}
	if input, err := DeliveryAckInput(ack.Record, ack.Jurisdiction, ack.At); err != nil || !bytes.Equal(input, bin("deliver-ack-input")) {
		t.Errorf("deliver-ack-input: %x %v", input, err)
	}
	if ack, err := DecodeDeliverAnswer(incident.CID(), bin("deliver-answer-refused")); err != nil || ack != nil {
		t.Errorf("deliver-answer-refused: %+v %v", ack, err)
	}
}

// wireSeeds returns the bytes of the vectors and invalid vectors of one
// decoder, for its fuzz target.
func wireSeeds(f *testing.F, decoder string, vectors ...string) [][]byte {
	var out [][]byte
	var vs []wireVector
	readJSON(f, filepath.Join(wireDir, "vectors.json"), &vs)
	for _, v := range vs {
		for _, name := range vectors {
			if v.Name == name {
				b, _ := hex.DecodeString(v.Hex)
				out = append(out, b)
			}
		}
	}
	var inv []wireInvalid
	readJSON(f, filepath.Join(wireDir, "invalid.json"), &inv)
	for _, v := range inv {
		if v.Decoder == decoder {
			b, _ := hex.DecodeString(v.Hex)
			out = append(out, b)
		}
	}
	return out
}

// FuzzFetchRequest: the request decoder never panics, and a request it
// accepts re-encodes to the same bytes (it accepts only the canonical
// form).
func FuzzFetchRequest(f *testing.F) {
	for _, b := range wireSeeds(f, "fetch-request", "fetch-request") {
		if fr, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), FetchMaxRequest); err == nil {
			b = fr // the vector is a frame; the decoder takes its body
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cids, err := DecodeFetchRequest(b)
		if err != nil {
			return
		}
		again, err := EncodeFetchRequest(cids)
		if err != nil {
			t.Fatalf("accepted %x but cannot re-encode it: %v", b, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, again)
		}
	})
}

// FuzzFetchAnswer: an answer that decodes re-encodes to the same frame.
func FuzzFetchAnswer(f *testing.F) {
	for _, b := range wireSeeds(f, "fetch-answer") {
		f.Add(b)
	}
	f.Add([]byte{0x00, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, held, err := DecodeFetchAnswer(b)
		if err != nil {
			return
		}
		if held != (rec != nil) {
			t.Fatalf("held %v with record %x", held, rec)
		}
		if again := AppendFetchAnswer(nil, rec); !bytes.Equal(again, AppendFrame(nil, b)) {
			t.Fatalf("accepted %x, which re-encodes as %x", b, again)
		}
	})
}

// FuzzReadFrame: the frame reader never panics, never returns more than
// its limit, and what it reads re-frames to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	for _, b := range wireSeeds(f, "frame", "fetch-answer-record", "sync-all-record", "cosign-request") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1 << 10
		r := bytes.NewReader(b)
		frame, err := ReadFrame(bufio.NewReaderSize(r, 16), limit)
		if err != nil {
			return
		}
		if len(frame) > limit {
			t.Fatalf("a %d-byte frame past the %d-byte limit", len(frame), limit)
		}
		if again := AppendFrame(nil, frame); !bytes.HasPrefix(b, again) {
			t.Fatalf("read %x from %x, which frames as %x", frame, b, again)
		}
	})
}

// FuzzCheckpointAnswer: an answer that decodes re-encodes to the same
// bytes; so does a request.
func FuzzCheckpointAnswer(f *testing.F) {
	for _, b := range wireSeeds(f, "checkpoint-answer", "checkpoint-answer", "checkpoint-answer-empty-log") {
		f.Add(b)
	}
	for _, b := range wireSeeds(f, "checkpoint-request", "checkpoint-request") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if nt, proof, err := DecodeCheckpointAnswer(b); err == nil {
			again, err := EncodeCheckpointAnswer(nt, proof)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("answer %x decodes and re-encodes as %x (%v)", b, again, err)
			}
		}
		if size, err := DecodeCheckpointRequest(b); err == nil {
			if again := EncodeCheckpointRequest(size); !bytes.Equal(again, b) {
				t.Fatalf("request %x decodes and re-encodes as %x", b, again)
			}
		}
	})
}

// FuzzCosignMessages: cosign requests and answers that decode re-encode
// to the same bytes.
func FuzzCosignMessages(f *testing.F) {
	for _, b := range wireSeeds(f, "cosign-request", "cosign-request") {
		f.Add(b)
	}
	f.Add([]byte{0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		if nt, err := DecodeCosignRequest(b); err == nil {
			again, err := EncodeCosignRequest(nt)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("request %x decodes and re-encodes as %x (%v)", b, again, err)
			}
		}
		if a, err := DecodeCosignAnswer(b); err == nil && !bytes.Equal([]byte{byte(a)}, b) {
			t.Fatalf("answer %x decodes as %d", b, a)
		}
	})
}

// FuzzDecodeDecisionBlock: the decoder never panics, refuses with an
// *Error, and what it accepts encodes back to the same bytes.
func FuzzDecodeDecisionBlock(f *testing.F) {
	for _, b := range wireSeeds(f, "decision-block", "decision-block") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := DecodeDecisionBlock(b)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("an error without a code: %v", err)
			}
			return
		}
		again, c, err := blk.Encode()
		if err != nil || !bytes.Equal(again, b) || !c.Equals(RecordCID(b)) {
			t.Fatalf("accepted %x, which encodes as %x (%v)", b, again, err)
		}
	})
}

// FuzzDeliverRequest: a request that decodes re-encodes to the same bytes.
func FuzzDeliverRequest(f *testing.F) {
	for _, b := range wireSeeds(f, "deliver-request", "deliver-request", "deliver-request-receipt") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, blocks, err := DecodeDeliverRequest(b)
		if err != nil {
			return
		}
		again, err := EncodeDeliverRequest(rec, blocks...)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("request %x decodes and re-encodes as %x (%v)", b, again, err)
		}
	})
}

// FuzzDeliverAnswer: an answer that decodes re-encodes to the same bytes,
// and an acknowledgement decoded from a stranger's bytes never verifies
// against the golden DE node unless it is the vector's.
func FuzzDeliverAnswer(f *testing.F) {
	for _, b := range wireSeeds(f, "deliver-answer", "deliver-answer-ack", "deliver-answer-refused") {
		f.Add(b)
	}
	_, golden := exampleDeliveryAck(f)
	node := keyID(seedKey(seedNodeDE))
	f.Fuzz(func(t *testing.T, b []byte) {
		ack, err := DecodeDeliverAnswer(golden.Record, b)
		if err != nil {
			return
		}
		again, err := EncodeDeliverAnswer(ack)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("answer %x decodes and re-encodes as %x (%v)", b, again, err)
		}
		if ack != nil && ack.Verify(node) == nil && (ack.Jurisdiction != golden.Jurisdiction || ack.At != golden.At) {
			t.Fatalf("answer %x verifies for another jurisdiction or time: %+v", b, ack)
		}
	})
}

// TestDeliveryAckForged: an acknowledgement verifies only against the
// node that signed it, and not once any field it covers changes.
func TestDeliveryAckForged(t *testing.T) {
	_, ack := exampleDeliveryAck(t)
	node, other := keyID(seedKey(seedNodeDE)), keyID(seedKey(seedFoundingDE))
	if err := ack.Verify(node); err != nil {
		t.Fatalf("the acknowledgement does not verify: %v", err)
	}
	if err := ack.Verify(other); !errors.Is(err, ErrDeliverAck) {
		t.Errorf("verified against another node: %v", err)
	}
	forged, err := SignDeliveryAck(seedKey(seedFoundingDE), ack.Record, ack.Jurisdiction, ack.At)
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.Verify(node); !errors.Is(err, ErrDeliverAck) {
		t.Errorf("an acknowledgement by another key verified as the node's: %v", err)
	}
	for name, mut := range map[string]func(*DeliveryAck){
		"record":       func(a *DeliveryAck) { a.Record = goldenRecords(t)[0].rec.CID() },
		"jurisdiction": func(a *DeliveryAck) { a.Jurisdiction = "FR" },
		"time":         func(a *DeliveryAck) { a.At++ },
		"signature":    func(a *DeliveryAck) { a.Sig = bytes.Clone(a.Sig); a.Sig[0] ^= 1 },
		"short":        func(a *DeliveryAck) { a.Sig = a.Sig[:63] },
	} {
		a := ack
		mut(&a)
		if err := a.Verify(node); err == nil {
			t.Errorf("an acknowledgement with another %s verified", name)
		}
	}
	if _, err := DeliveryAckInput(RecordCID([]byte("r")), "de", 1); err == nil {
		t.Error("a lower-case code was signed")
	}
	if _, err := DeliveryAckInput(RecordCID([]byte("r")), "DE", -1); err == nil {
		t.Error("a negative time was signed")
	}
}

// FuzzWitnessedMessages: witnessed requests and answers that decode
// re-encode to the same bytes.
func FuzzWitnessedMessages(f *testing.F) {
	for _, b := range wireSeeds(f, "witnessed-request", "witnessed-request") {
		f.Add(b)
	}
	for _, b := range wireSeeds(f, "witnessed-answer", "witnessed-answer", "witnessed-answer-none") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, err := DecodeWitnessedRequest(b); err == nil {
			again, err := EncodeWitnessedRequest(id)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("request %x decodes and re-encodes as %x (%v)", b, again, err)
			}
		}
		if nt, err := DecodeWitnessedAnswer(b); err == nil {
			again, err := EncodeWitnessedAnswer(nt)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("answer %x decodes and re-encodes as %x (%v)", b, again, err)
			}
		}
	})
}
