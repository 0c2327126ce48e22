package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The bundle tests build what a node would: the decision world's records
// in a log, a receipt by the DE node appended after them, one more
// record after the receipt, and a checkpoint of the whole log signed
// with the node's key in the note format of node/checkpoint.go.

const bundleFederation = "bundle-test"

// memLog is a Merkle log in memory (tlog's stored hashes in a slice).
type memLog struct {
	leaves []*Record
	hashes []tlog.Hash
}

func (l *memLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("no stored hash %d", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *memLog) append(t testing.TB, rs ...*Record) {
	t.Helper()
	for _, r := range rs {
		hs, err := tlog.StoredHashesForRecordHash(int64(len(l.leaves)), tlog.RecordHash(r.CID().Bytes()), l)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.leaves = append(l.leaves, r)
	}
}

func (l *memLog) head(t testing.TB) LogTree {
	t.Helper()
	root, err := tlog.TreeHash(int64(len(l.leaves)), l)
	if err != nil {
		t.Fatal(err)
	}
	return LogTree{Size: uint64(len(l.leaves)), Root: root}
}

func (l *memLog) index(c cid.Cid) int64 {
	for i, r := range l.leaves {
		if r.CID().Equals(c) {
			return int64(i)
		}
	}
	return -1
}

// testNoteSigner signs checkpoint notes as a node does.
type testNoteSigner struct {
	name string
	key  ed25519.PrivateKey
}

func noteKeyOf(k crypto.PrivKey) ed25519.PrivateKey {
	raw, err := k.Raw()
	if err != nil {
		panic(err)
	}
	return ed25519.PrivateKey(raw)
}

func (s testNoteSigner) Name() string { return s.name }
func (s testNoteSigner) KeyHash() uint32 {
	h := sha256.Sum256(append(append([]byte(s.name), '\n', 1), s.key.Public().(ed25519.PublicKey)...))
	return binary.BigEndian.Uint32(h[:4])
}
func (s testNoteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

func testOrigin(federation string, id peer.ID) string {
	return "entente/" + federation + "/" + id.String()
}

func signTestCheckpoint(t testing.TB, key crypto.PrivKey, federation string, tree LogTree) []byte {
	t.Helper()
	s := testNoteSigner{name: testOrigin(federation, keyID(key)), key: noteKeyOf(key)}
	msg, err := note.Sign(&note.Note{Text: s.name + "\n" + strconv.FormatUint(tree.Size, 10) + "\n" + tree.Root.String() + "\n"}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

type bundleFixture struct {
	t       testing.TB
	w       *world
	log     *memLog
	receipt *Record
	records []*Record // every record of the world, the bundle's records
	note    []byte
	trust   BundleTrust
	blocks  map[cid.Cid][]byte // each receipt's decision block
	lineage [][]byte           // the ancestors' decision blocks, parent first
}

func newBundleFixture(t testing.TB) *bundleFixture {
	t.Helper()
	w := newWorld(t)
	f := &bundleFixture{t: t, w: w, log: &memLog{}}
	for _, r := range w.v.records {
		f.records = append(f.records, r)
	}
	slices.SortFunc(f.records, func(a, b *Record) int {
		if a.IssuedAt() != b.IssuedAt() {
			return int(a.IssuedAt() - b.IssuedAt())
		}
		return strings.Compare(a.CID().KeyString(), b.CID().KeyString())
	})
	f.log.append(t, f.records...)
	f.receipt = f.signReceipt(nodeDE, func(*DecisionBlock) {})
	f.log.append(t, f.receipt, accredit(t, authFR, stranger, "FR", RoleAuditor, t0, windowUntil))
	f.note = signTestCheckpoint(t, nodeDE, bundleFederation, f.log.head(t))
	f.trust = BundleTrust{Federation: bundleFederation, Authorities: w.v.authorities, FoundingNodes: w.v.founding}
	return f
}

// signReceipt signs the world's decision (its block changed by mut) as
// key, at the log as it is, and keeps the block for the receipt's bundles.
func (f *bundleFixture) signReceipt(key crypto.PrivKey, mut func(*DecisionBlock)) *Record {
	f.t.Helper()
	d := f.w.decide()
	head := f.log.head(f.t)
	if f.receipt != nil { // the log before the first receipt
		idx := f.log.index(f.receipt.CID())
		root, err := tlog.TreeHash(idx, f.log)
		if err != nil {
			f.t.Fatal(err)
		}
		head = LogTree{Size: uint64(idx), Root: root}
	}
	blk := d.Block(f.w.req)
	blk.Checks = slices.Clone(blk.Checks)
	mut(blk)
	enc, c, err := blk.Encode()
	if err != nil {
		f.t.Fatal(err)
	}
	r := mustSign(f.t, key, f.w.req.At, NewReceipt([]cid.Cid{c}, Checkpoint{Size: int64(head.Size), Root: head.Root[:]}))
	if f.blocks == nil {
		f.blocks = map[cid.Cid][]byte{}
	}
	f.blocks[r.CID()] = enc
	return r
}

// manifest makes the manifest of a bundle of receipt and records.
func (f *bundleFixture) manifest(receipt *Record, records []*Record) *BundleManifest {
	f.t.Helper()
	tree := f.log.head(f.t)
	m := &BundleManifest{V: BundleVersion, Receipt: LinkTo(receipt.CID()), Checkpoint: f.note}
	rc, _ := receipt.Receipt()
	if from := rc.Checkpoint.Size; from > 0 && uint64(from) < tree.Size {
		p, err := tlog.ProveTree(int64(tree.Size), from, f.log)
		if err != nil {
			f.t.Fatal(err)
		}
		m.Consistency = HashBytes(p)
	}
	for _, r := range BundleRecords(receipt, records) {
		idx := f.log.index(r.CID())
		var hashes [][]byte
		if idx >= 0 {
			p, err := tlog.ProveRecord(int64(tree.Size), idx, f.log)
			if err != nil {
				f.t.Fatal(err)
			}
			hashes = HashBytes(p)
		} else {
			idx = 0 // not logged: a proof that cannot hold
		}
		m.Proofs = append(m.Proofs, BundleProof{CID: LinkTo(r.CID()), Index: idx, Hashes: hashes})
	}
	return m
}

// car writes the bundle of receipt and records, mut changing the
// manifest first.
func (f *bundleFixture) car(receipt *Record, records []*Record, mut func(*BundleManifest)) []byte {
	f.t.Helper()
	m := f.manifest(receipt, records)
	if mut != nil {
		mut(m)
	}
	b, err := NewBundle(receipt, m, f.blocks[receipt.CID()], f.lineage, records)
	if err != nil {
		f.t.Fatal(err)
	}
	car, err := b.MarshalCAR()
	if err != nil {
		f.t.Fatal(err)
	}
	return car
}

func (f *bundleFixture) good() []byte { return f.car(f.receipt, f.records, nil) }

func stepOf(rep *BundleReport, id string) BundleStep {
	for _, s := range rep.Steps {
		if s.ID == id {
			return s
		}
	}
	return BundleStep{ID: id, Detail: "(not reported)"}
}

func TestBundleHolds(t *testing.T) {
	f := newBundleFixture(t)
	car := f.good()
	rep := CheckBundleCAR(car, f.trust)
	var ids []string
	for _, s := range rep.Steps {
		ids = append(ids, s.ID)
		if !s.OK || s.Skipped {
			t.Errorf("%s: ok %v skipped %v: %s", s.ID, s.OK, s.Skipped, s.Detail)
		}
		t.Logf("%-20s %s", s.ID, s.Detail)
	}
	if !slices.Equal(ids, bundleSteps) {
		t.Errorf("steps %v, want %v", ids, bundleSteps)
	}
	if !rep.OK() || rep.Err() != nil {
		t.Errorf("OK %v, Err %v", rep.OK(), rep.Err())
	}
	if rep.Receipt == nil || !rep.Receipt.CID().Equals(f.receipt.CID()) {
		t.Errorf("report's receipt %v", rep.Receipt)
	}
	if rep.Decision == nil || rep.Decision.Verdict != VerdictAllow || len(rep.Decision.Checks) != len(CheckIDs) {
		t.Errorf("recomputed decision %+v", rep.Decision)
	}
	// A receipt on the empty log (nothing held: every check fails)
	// checks too: its tree needs no consistency proof.
	nothing := newFakeView()
	nothing.authorities, nothing.founding = f.w.v.authorities, f.w.v.founding
	empty := &bundleFixture{t: t, w: &world{t: t, v: &decisionView{fakeView: nothing}, req: f.w.req}, log: &memLog{}}
	empty.receipt = empty.signReceipt(foundingDE, func(*DecisionBlock) {})
	empty.log.append(t, empty.receipt)
	empty.note = signTestCheckpoint(t, foundingDE, bundleFederation, empty.log.head(t))
	rep = CheckBundleCAR(empty.car(empty.receipt, nil, nil), f.trust)
	if err := rep.Err(); err != nil {
		t.Errorf("a deny receipt of a founding node on the empty log: %v", err)
	}
	if rep.Decision == nil || rep.Decision.Verdict != VerdictDeny {
		t.Errorf("recomputed %+v", rep.Decision)
	}
}

// TestBundleRoundTrip: ReadBundle gives back the blocks NewBundle laid
// out, and they write the same bytes again.
func TestBundleRoundTrip(t *testing.T) {
	f := newBundleFixture(t)
	car := f.good()
	b, err := ReadBundle(car)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Root.Equals(f.receipt.CID()) || len(b.Blocks) != len(f.records)+3 {
		t.Fatalf("root %s, %d blocks", b.Root, len(b.Blocks))
	}
	if !bytes.Equal(b.Blocks[0].Data, f.receipt.Bytes()) {
		t.Error("the first block is not the receipt")
	}
	m, err := DecodeBundleManifest(b.Blocks[1].Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Proofs) != len(f.records)+1 || !m.Proofs[0].CID.Equals(f.receipt.CID()) {
		t.Errorf("manifest: %d proofs, the first for %s", len(m.Proofs), m.Proofs[0].CID)
	}
	again, err := b.MarshalCAR()
	if err != nil || !bytes.Equal(again, car) {
		t.Errorf("written again: %v, same bytes %v", err, bytes.Equal(again, car))
	}
	// go-car reads it as any CAR v1, CIDs checked.
	br, err := carv2.NewBlockReader(bytes.NewReader(car))
	if err != nil || br.Version != 1 {
		t.Fatalf("go-car: %v", err)
	}
	for n := 0; ; n++ {
		if _, err := br.Next(); err != nil {
			if n != len(b.Blocks) {
				t.Errorf("go-car read %d blocks (%v), want %d", n, err, len(b.Blocks))
			}
			break
		}
	}
}

// carOf writes blocks under roots with go-car, without NewBundle's
// layout, for bundles that break it.
func carOf(t testing.TB, roots []cid.Cid, blocks ...BundleBlock) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := carstorage.NewWritable(&buf, roots, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.Put(t.Context(), b.CID.KeyString(), b.Data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestReadBundleRefuses(t *testing.T) {
	f := newBundleFixture(t)
	good := f.good()
	b, err := ReadBundle(good)
	if err != nil {
		t.Fatal(err)
	}
	// A header varint written in two bytes instead of one.
	padded := append([]byte{good[0] | 0x80, 0x00}, good[1:]...)
	v2 := append([]byte(nil), carv2.Pragma...)
	for _, c := range []struct {
		name, car, want string
	}{
		{"empty", "", "not a CAR"},
		{"garbage", "not a car at all", "not a CAR"},
		{"two roots", string(carOf(t, []cid.Cid{b.Root, b.Blocks[1].CID}, b.Blocks...)), "2 roots"},
		{"no roots", string(carOf(t, nil, b.Blocks...)), "roots"},
		{"a repeated block", string(carOf(t, []cid.Cid{b.Root}, append(slices.Clone(b.Blocks), b.Blocks[2])...)), "repeats block 3"},
		{"non-minimal framing", string(padded), "minimally"},
		{"a CAR v2", string(v2), "CAR"},
		{"truncated", string(good[:len(good)-5]), "block"},
		{"over the limit", string(make([]byte, MaxBundleSize+1)), "limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadBundle([]byte(c.car))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one mentioning %q", err, c.want)
			}
			rep := CheckBundleCAR([]byte(c.car), f.trust)
			if rep.OK() || rep.Steps[0].ID != StepCAR || rep.Steps[0].OK || len(rep.Steps) != len(bundleSteps) {
				t.Fatalf("report %+v", rep.Steps)
			}
		})
	}
}

// TestBundleTampered: each kind of tampering fails the step that should
// notice it, with a reason that names what is wrong.
func TestBundleTampered(t *testing.T) {
	f := newBundleFixture(t)
	good := f.good()
	d := f.w.decide()
	consentIssuer := f.w.acc(ctrlDE)
	withoutConsentIssuer := slices.DeleteFunc(slices.Clone(f.records), func(r *Record) bool { return r == consentIssuer })
	// The same node re-signs the receipt with the other verdict.
	lying := f.signReceipt(nodeDE, func(b *DecisionBlock) {
		b.Verdict = VerdictDeny
		b.Checks[len(b.Checks)-1].OK, b.Checks[len(b.Checks)-1].Reason = false, ReasonBlocked
	})
	// A key that is no node signs the receipt, and logs it in a log of
	// its own.
	forged := f.signReceipt(stranger, func(*DecisionBlock) {})
	otherFed := f.trust
	otherFed.Authorities = map[string]peer.ID{"DE": keyID(stranger), "FR": keyID(authFR), "BR": keyID(authBR)}
	renamed := f.trust
	renamed.Federation = "another-federation"

	flip := func(car []byte, at int) []byte {
		out := slices.Clone(car)
		out[at] ^= 0x01
		return out
	}
	// offsetOf finds a block's bytes in the CAR.
	offsetOf := func(data []byte) int {
		i := bytes.Index(good, data)
		if i < 0 {
			t.Fatal("block not found in the CAR")
		}
		return i
	}
	consentAt := offsetOf(f.w.cons.Bytes())
	cases := []struct {
		name  string
		car   []byte
		trust BundleTrust
		step  string // the first step that fails
		want  []string
	}{
		{"a byte of a record", flip(good, consentAt+len(f.w.cons.Bytes())/2), f.trust, StepBlocks,
			[]string{"hash to", f.w.cons.CID().String()}},
		{"a byte of the receipt", flip(good, offsetOf(f.receipt.Bytes())+40), f.trust, StepBlocks, []string{"block 1 (the receipt)", "hash to"}},
		{"a record removed", f.car(f.receipt, withoutConsentIssuer, nil), f.trust, StepEvidenceHeld,
			[]string{"not in the bundle", consentIssuer.CID().String()}},
		{"the checkpoint note", f.car(f.receipt, f.records, func(m *BundleManifest) {
			m.Checkpoint = bytes.Replace(m.Checkpoint, []byte("\n"+strconv.Itoa(len(f.log.leaves))+"\n"), []byte("\n999\n"), 1)
		}), f.trust, StepCheckpoint, []string{"invalid signature"}},
		{"a proof hash", f.car(f.receipt, f.records, func(m *BundleManifest) { m.Proofs[3].Hashes[0][7] ^= 0x10 }), f.trust, StepInclusion,
			[]string{"is not leaf"}},
		{"a proof's index", f.car(f.receipt, f.records, func(m *BundleManifest) { m.Proofs[0].Index++ }), f.trust, StepInclusion,
			[]string{f.receipt.CID().String(), "is not leaf"}},
		{"the consistency proof", f.car(f.receipt, f.records, func(m *BundleManifest) { m.Consistency[0][0] ^= 0x01 }), f.trust, StepConsistency,
			[]string{"not a prefix"}},
		{"proofs missing", f.car(f.receipt, f.records, func(m *BundleManifest) { m.Proofs = m.Proofs[:2] }), f.trust, StepInclusion,
			[]string{"2 proofs for"}},
		{"the verdict, re-signed by the node", f.car(lying, f.records, nil), f.trust, StepInclusion,
			[]string{lying.CID().String(), "is not leaf"}},
		{"the receipt, signed by a key that is no node", f.car(forged, f.records, nil), f.trust, StepReceiptIssuer,
			[]string{keyID(stranger).String(), "unauthorized_issuer"}},
		{"another federation's authorities", good, otherFed, StepReceiptIssuer, []string{"unauthorized_issuer", "no live node"}},
		{"another federation's name", good, renamed, StepCheckpoint, []string{"another-federation"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := CheckBundleCAR(c.car, c.trust)
			for _, s := range rep.Steps {
				t.Logf("%-20s ok=%-5v skip=%-5v %s", s.ID, s.OK, s.Skipped, s.Detail)
			}
			first, failed := rep.FirstFailure()
			if !failed || rep.OK() {
				t.Fatal("the bundle holds")
			}
			if first.ID != c.step {
				t.Fatalf("first failure %s (%s), want %s", first.ID, first.Detail, c.step)
			}
			for _, w := range c.want {
				if !strings.Contains(first.Detail, w) {
					t.Errorf("%s: %q does not mention %q", first.ID, first.Detail, w)
				}
			}
			var be *BundleError
			if err := rep.Err(); !errors.As(err, &be) || be.Step.ID != c.step || !strings.HasPrefix(err.Error(), "the bundle does not hold: "+c.step+": ") {
				t.Errorf("Err() = %v", err)
			}
		})
	}

	// The node's lie is caught by the decision too, whatever the log says.
	rep := CheckBundleCAR(f.car(lying, f.records, nil), f.trust)
	if s := stepOf(rep, StepDecision); s.OK || !strings.Contains(s.Detail, "ALLOW, the receipt says DENY") {
		t.Errorf("decision step on a lie: %+v", s)
	}
	// A record taken away changes the recomputed decision.
	rep = CheckBundleCAR(f.car(f.receipt, withoutConsentIssuer, nil), f.trust)
	if s := stepOf(rep, StepDecision); s.OK || !strings.Contains(s.Detail, CheckConsentIssuer) {
		t.Errorf("decision step without the consent issuer's accreditation: %+v", s)
	}
	if d.Verdict != VerdictAllow {
		t.Fatalf("the world's decision is %s", d.Verdict)
	}
}

// TestBundleAnyByteChanged: whichever byte of a bundle changes, it does
// not hold. Every byte of the header and the first section is tried,
// then every 13th (every byte takes half a minute).
func TestBundleAnyByteChanged(t *testing.T) {
	f := newBundleFixture(t)
	good := f.good()
	stride := 13
	if testing.Short() {
		stride = 101
	}
	next := func(i int) int {
		if i < 160 {
			return i + 1
		}
		return i + stride
	}
	for i := 0; i < len(good); i = next(i) {
		for _, mask := range []byte{0x01, 0x80} {
			bad := slices.Clone(good)
			bad[i] ^= mask
			if CheckBundleCAR(bad, f.trust).OK() {
				t.Fatalf("byte %d of %d xor %#x: the bundle still holds", i, len(good), mask)
			}
		}
	}
	if !CheckBundleCAR(good, f.trust).OK() {
		t.Fatal("the untouched bundle does not hold")
	}
}

func TestBundleManifestDecoding(t *testing.T) {
	f := newBundleFixture(t)
	m := f.manifest(f.receipt, f.records)
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeBundleManifest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := back.Encode(); !bytes.Equal(again, enc) {
		t.Fatal("decode then encode changed the bytes")
	}
	for _, c := range []struct {
		name  string
		mut   func(*BundleManifest)
		field string
	}{
		{"version 2", func(m *BundleManifest) { m.V = 2 }, "v"},
		{"a short hash", func(m *BundleManifest) { m.Proofs[1].Hashes[0] = m.Proofs[1].Hashes[0][:31] }, "proofs[1].hashes[0]"},
		{"a negative index", func(m *BundleManifest) { m.Proofs[2].Index = -1 }, "proofs[2].index"},
		{"no checkpoint", func(m *BundleManifest) { m.Checkpoint = nil }, "checkpoint"},
		{"a long consistency hash", func(m *BundleManifest) { m.Consistency[0] = append(m.Consistency[0], 0) }, "consistency[0]"},
	} {
		bad := f.manifest(f.receipt, f.records)
		c.mut(bad)
		if _, err := bad.Encode(); err == nil {
			t.Errorf("%s: encoded", c.name)
		}
		raw, err := encMode.Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeBundleManifest(raw)
		var pe *Error
		if !errors.As(err, &pe) || pe.Field != c.field {
			t.Errorf("%s: %v, want an error at %s", c.name, err, c.field)
		}
	}
	// Non-canonical: a map key order that is not length-first.
	type unordered struct {
		Receipt     Link          `cbor:"receipt"`
		V           int64         `cbor:"v"`
		Item        int64         `cbor:"item"`
		Lineage     []Link        `cbor:"lineage"`
		Checkpoint  []byte        `cbor:"checkpoint"`
		Consistency [][]byte      `cbor:"consistency"`
		Proofs      []BundleProof `cbor:"proofs"`
	}
	plain, err := cborNoSort(unordered{m.Receipt, m.V, m.Item, m.Lineage, m.Checkpoint, m.Consistency, m.Proofs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeBundleManifest(plain); CodeOf(err) != CodeNonCanonical {
		t.Errorf("keys out of order: %v", err)
	}
}

// cborNoSort encodes v with its struct fields in declaration order.
func cborNoSort(v any) ([]byte, error) {
	m, err := cbor.EncOptions{Sort: cbor.SortNone, TagsMd: cbor.TagsAllowed}.EncMode()
	if err != nil {
		return nil, err
	}
	return m.Marshal(v)
}

func TestDecisionDiff(t *testing.T) {
	w := newWorld(t)
	d := w.decide()
	rc := d.Block(w.req)
	if s := d.Diff(rc); s != "" {
		t.Fatalf("a decision differs from its own receipt: %s", s)
	}
	other := *rc
	other.Checks = slices.Clone(rc.Checks)
	other.Checks[2].Detail += "!"
	if s := d.Diff(&other); s != "" {
		t.Errorf("a detail changed, which is for people only: %q", s)
	}
	other.Checks = slices.Clone(rc.Checks)
	other.Checks[2].OK, other.Checks[2].Reason = false, ReasonExpired
	if s := d.Diff(&other); !strings.Contains(s, "check consent.live") || !strings.Contains(s, "FAIL expired") {
		t.Errorf("a check failed with a reason: %q", s)
	}
	w.req.Purpose = "marketing"
	failing := w.decide()
	frc := failing.Block(w.req)
	frc.Checks = slices.Clone(frc.Checks)
	i := slices.IndexFunc(frc.Checks, func(c Check) bool { return !c.OK })
	frc.Checks[i].Reason = ReasonTier
	if s := failing.Diff(frc); !strings.Contains(s, "FAIL "+ReasonTier) {
		t.Errorf("a reason changed: %q", s)
	}
	other = *rc
	other.Evidence = rc.Evidence[1:]
	if s := d.Diff(&other); !strings.Contains(s, "evidence differs") {
		t.Errorf("evidence changed: %q", s)
	}
	other = *rc
	other.Verdict = VerdictDeny
	if s := d.Diff(&other); !strings.Contains(s, "the receipt says DENY") {
		t.Errorf("verdict changed: %q", s)
	}
}

// FuzzBundleCheck: no bytes make ReadBundle or CheckBundleCAR panic;
// what ReadBundle accepts is the one framing of its blocks; a bundle that
// holds has the seed's receipt.
func FuzzBundleCheck(f *testing.F) {
	fx := newBundleFixture(f)
	fx.trust.Rules = NewRuleEngine(0)
	good := fx.good()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(fx.car(fx.receipt, fx.records[:3], nil))
	f.Add(carOf(f, []cid.Cid{fx.receipt.CID()}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, car []byte) {
		b, err := ReadBundle(car)
		if err == nil {
			again, err := b.MarshalCAR()
			if err != nil || !bytes.Equal(again, car) {
				t.Fatalf("ReadBundle accepted bytes it does not write back: %v", err)
			}
		}
		rep := CheckBundleCAR(car, fx.trust)
		if len(rep.Steps) != len(bundleSteps) {
			t.Fatalf("%d steps", len(rep.Steps))
		}
		if rep.OK() && !rep.Receipt.CID().Equals(fx.receipt.CID()) {
			t.Fatalf("a bundle of another receipt holds: %s", rep.Receipt.CID())
		}
	})
}

// BenchmarkCheckBundle: the offline check of a receipt's bundle, and the
// bundle's size.
func BenchmarkCheckBundle(b *testing.B) {
	f := newBundleFixture(b)
	f.trust.Rules = NewRuleEngine(0)
	car := f.good()
	b.ReportAllocs()
	for b.Loop() {
		if !CheckBundleCAR(car, f.trust).OK() {
			b.Fatal("the bundle does not hold")
		}
	}
	b.ReportMetric(float64(len(car)), "bytes/bundle")
}

// TestGoldenBundle: testdata/wire/bundle.car is the fixture's bundle
// (fixed keys and times: an allowed DE → FR transfer, its receipt by the
// DE node of the golden records), byte for byte, and it holds. Regenerate
// with: go test ./protocol -run Golden -update
func TestGoldenBundle(t *testing.T) {
	f := newBundleFixture(t)
	good := f.good()
	path := filepath.Join(wireDir, "bundle.car")
	if *update {
		writeFile(t, path, good)
	}
	stored, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, good) {
		t.Fatalf("%s differs from the bundle the code makes (go test ./protocol -run Golden -update)", path)
	}
	if rep := CheckBundleCAR(stored, f.trust); !rep.OK() {
		t.Fatalf("the golden bundle does not hold: %v", rep.Err())
	}
}
