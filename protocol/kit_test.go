package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The kit for other implementations (testdata/kit, described in doc.go,
// "Test vectors"): keys, signing inputs, decisions and bundles, made from
// fixed seeds and times, in files a program in any language can read.
// The tests check that the files are what the code makes, and that the
// decisions come out of the files alone. Regenerate with:
// go test ./protocol -run Golden -update

const kitDir = "testdata/kit"

// kitKeys are the seeds of the kit, by name.
var kitKeys = []struct {
	name string
	seed byte
}{
	{"authority-DE", seedAuthorityDE}, {"authority-FR", seedAuthorityFR}, {"node-DE", seedNodeDE},
	{"controller-DE", seedControllerDE}, {"regulator-DE", seedRegulatorDE}, {"controller-FR", seedControllerFR},
	{"stranger", seedStranger}, {"founding-node-DE", seedFoundingDE}, {"another-controller-DE", 0x10},
	{"founding-node-US", 0x11}, {"authority-BR", 0x30},
}

type kitKey struct {
	Name        string `json:"name"`
	Seed        string `json:"seed"`          // 32 bytes, hex: the Ed25519 seed
	KeyFile     string `json:"key_file"`      // hex: crypto.MarshalPrivateKey, a key file's bytes
	PublicKey   string `json:"public_key"`    // hex: the 32-byte Ed25519 public key
	PeerIDBytes string `json:"peer_id_bytes"` // hex: the binary peer ID (identity multihash of the protobuf public key)
	PeerID      string `json:"peer_id"`
}

func kitKeyFiles(t *testing.T) []kitKey {
	var out []kitKey
	for _, k := range kitKeys {
		key := seedKey(k.seed)
		file, err := crypto.MarshalPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := key.GetPublic().Raw()
		if err != nil {
			t.Fatal(err)
		}
		id := keyID(key)
		out = append(out, kitKey{Name: k.name, Seed: hex.EncodeToString(bytes.Repeat([]byte{k.seed}, 32)), KeyFile: hex.EncodeToString(file),
			PublicKey: hex.EncodeToString(pub), PeerIDBytes: hex.EncodeToString([]byte(id)), PeerID: id.String()})
	}
	return out
}

type kitSigning struct {
	Name         string `json:"name"`
	Key          string `json:"key"`           // a name of keys.json
	SigningInput string `json:"signing_input"` // hex: the domain, a zero byte, the record map without sig
	Signature    string `json:"signature"`     // hex: Ed25519 over signing_input
	Record       string `json:"record"`        // hex: the record's bytes
	CID          string `json:"cid"`
}

func kitSignings(t *testing.T) []kitSigning {
	names := map[string]string{}
	for _, k := range kitKeys {
		names[seedID(k.seed).String()] = k.name
	}
	var out []kitSigning
	for _, g := range goldenRecords(t) {
		out = append(out, kitSigning{Name: g.name, Key: names[g.rec.Issuer().String()], SigningInput: hex.EncodeToString(g.rec.SigningInput()),
			Signature: hex.EncodeToString(g.rec.Signature()), Record: hex.EncodeToString(g.rec.Bytes()), CID: g.rec.CID().String()})
	}
	return out
}

// kitDecisions is testdata/kit/decisions.json.
type kitDecisions struct {
	Federation kitFederation     `json:"federation"`
	Records    map[string]string `json:"records"` // CID → hex bytes
	Blocks     map[string]string `json:"blocks"`  // CID → hex bytes of decision blocks
	Decisions  []kitDecision     `json:"decisions"`
}

type kitFederation struct {
	Name          string            `json:"name,omitempty"`
	Authorities   map[string]string `json:"authorities"`    // jurisdiction → peer ID
	FoundingNodes map[string]string `json:"founding_nodes"` // peer ID → jurisdiction
}

type kitDecision struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Holds       []string        `json:"holds"`            // CIDs of records the deciding node holds
	HoldsBlocks []string        `json:"blocks,omitempty"` // CIDs of decision blocks it holds
	Request     json.RawMessage `json:"request"`          // the JSON form (at included)
	RequestCBOR string          `json:"request_cbor"`     // hex: the request as a decision block holds it
	Verdict     string          `json:"verdict"`
	Checks      []kitCheck      `json:"checks"`
	Evidence    []string        `json:"evidence"`
}

type kitCheck struct {
	ID       string `json:"id"`
	OK       bool   `json:"ok"`
	Reason   string `json:"reason,omitempty"`
	Evidence string `json:"evidence,omitempty"`
}

func federationOf(v *fakeView, name string) kitFederation {
	f := kitFederation{Name: name, Authorities: map[string]string{}, FoundingNodes: map[string]string{}}
	for j, id := range v.authorities {
		f.Authorities[j] = id.String()
	}
	for id, j := range v.founding {
		f.FoundingNodes[id.String()] = j
	}
	return f
}

// kitDecisionCases are the decision vectors: a world, changed by setup.
var kitDecisionCases = []struct {
	name, description string
	resale            bool
	setup             func(t testing.TB, w *world)
}{
	{"allow", "a tier-1 transfer DE → FR every check allows", false, nil},
	{"consent-not-held", "the consent is not held: consent.known fails, and every check that needs the consent", false,
		func(t testing.TB, w *world) { w.v.forget(w.cons) }},
	{"purpose-prohibited", "a purpose the consent does not name and both rule sets prohibit", false,
		func(t testing.TB, w *world) { w.req.Purpose = "law-enforcement" }},
	{"consent-revoked", "the consent's issuer revoked it before the decision time", false,
		func(t testing.TB, w *world) { w.hold(revoke(t, ctrlDE, w.cons, t0+hour)) }},
	{"recipient-not-accredited", "the recipient holds no controller accreditation of FR", false,
		func(t testing.TB, w *world) { w.req.Recipient = keyID(stranger).String() }},
	{"incident-blocks", "an open high-severity incident names the recipient", false,
		func(t testing.TB, w *world) {
			w.hold(notice(t, regDE, t0, StatusOpen, SeverityHigh, []crypto.PrivKey{ctrlFR}, nil))
		}},
	{"tier-2-without-parent", "a resale that names no parent, beyond the consent's max_tier: scope, a rule condition and the lineage fail", false,
		func(t testing.TB, w *world) { w.req.Tier = 2 }},
	{"resale-allowed", "a tier-2 resale FR → DE naming the allowed tier-1 decision it comes from", true,
		func(t testing.TB, w *world) { w.chainTo(2) }},
	{"resale-wider-purpose", "a tier-2 resale for a purpose its parent decision did not allow", true,
		func(t testing.TB, w *world) { w.chainTo(2); w.req.Purpose = "identity-verification" }},
	{"resale-parent-denied", "a tier-3 resale whose parent, a tier-2 resale kept longer than its own parent, was denied", true,
		func(t testing.TB, w *world) {
			r1, _, _ := w.signDecision(w.requestAt(1, nil), nodeDE, nil)
			long := w.requestAt(2, &DecisionRef{Receipt: LinkTo(r1.CID())})
			long.RetentionDays = 60
			r2, _, _ := w.signDecision(long, nodeDE, nil)
			w.req = w.requestAt(3, &DecisionRef{Receipt: LinkTo(r2.CID())})
		}},
}

func kitDecisionFile(t *testing.T) kitDecisions {
	out := kitDecisions{Records: map[string]string{}, Blocks: map[string]string{}}
	for _, c := range kitDecisionCases {
		w := newWorld(t)
		if c.resale {
			w = newResaleWorld(t)
		}
		if c.setup != nil {
			c.setup(t, w)
		}
		out.Federation = federationOf(w.v.fakeView, "")
		d := w.decide()
		js, err := w.req.JSON()
		if err != nil {
			t.Fatal(err)
		}
		cb, err := encMode.Marshal(&w.req)
		if err != nil {
			t.Fatal(err)
		}
		v := kitDecision{Name: c.name, Description: c.description, Request: js, RequestCBOR: hex.EncodeToString(cb), Verdict: d.Verdict}
		for id, r := range w.v.records {
			v.Holds = append(v.Holds, id.String())
			out.Records[id.String()] = hex.EncodeToString(r.Bytes())
		}
		for id, b := range w.v.blocks {
			enc, _, err := b.Encode()
			if err != nil {
				t.Fatal(err)
			}
			v.HoldsBlocks = append(v.HoldsBlocks, id.String())
			out.Blocks[id.String()] = hex.EncodeToString(enc)
		}
		slices.Sort(v.Holds)
		slices.Sort(v.HoldsBlocks)
		for _, ch := range d.Checks {
			kc := kitCheck{ID: ch.ID, OK: ch.OK, Reason: ch.Reason}
			if ch.Evidence != nil {
				kc.Evidence = ch.Evidence.String()
			}
			v.Checks = append(v.Checks, kc)
		}
		for _, l := range d.Evidence {
			v.Evidence = append(v.Evidence, l.String())
		}
		out.Decisions = append(out.Decisions, v)
	}
	return out
}

// kitBundle is one entry of testdata/kit/bundles.json.
type kitBundle struct {
	File        string        `json:"file"` // relative to testdata
	Description string        `json:"description"`
	Federation  kitFederation `json:"federation"`
	Holds       bool          `json:"holds"`
	Steps       []kitStep     `json:"steps"`
}

type kitStep struct {
	ID    string `json:"id"`
	OK    bool   `json:"ok"`
	Depth int    `json:"depth,omitempty"`
}

// kitBundleFiles makes the kit's bundles: name → CAR bytes, and their
// index. The tier-1 bundle is testdata/wire/bundle.car (TestGoldenBundle).
func kitBundleFiles(t *testing.T) (map[string][]byte, []kitBundle) {
	tier1 := newBundleFixture(t)
	tier3 := newLineageFixture(t, nil)
	good3 := tier3.good()
	tampered := bytes.Clone(good3)
	at := bytes.Index(tampered, tier3.lineage[1])
	tampered[at+len(tier3.lineage[1])/2] ^= 1
	files := map[string][]byte{"kit/bundle-tier3.car": good3, "kit/bundle-tier3-tampered.car": tampered}
	var index []kitBundle
	for _, b := range []struct {
		file, description string
		f                 *bundleFixture
		car               []byte
	}{
		{"wire/bundle.car", "an allowed tier-1 transfer DE → FR, decided by the DE node (seed 0x03)", tier1, tier1.good()},
		{"kit/bundle-tier3.car", "an allowed tier-3 resale DE → FR, with its two ancestors (tier 1 DE → FR, tier 2 FR → DE), all decided by the DE node", tier3, good3},
		{"kit/bundle-tier3-tampered.car", "the tier-3 bundle with one byte of the grandparent's decision block changed", tier3, tampered},
	} {
		rep := CheckBundleCAR(b.car, b.f.trust)
		e := kitBundle{File: b.file, Description: b.description, Federation: federationOf(b.f.w.v.fakeView, b.f.trust.Federation), Holds: rep.OK()}
		for _, s := range rep.Steps {
			e.Steps = append(e.Steps, kitStep{ID: s.ID, OK: s.OK, Depth: s.Depth})
		}
		index = append(index, e)
	}
	return files, index
}

// TestGoldenKit: testdata/kit is what the code makes.
func TestGoldenKit(t *testing.T) {
	bundles, index := kitBundleFiles(t)
	files := map[string][]byte{
		"kit/keys.json":      mustJSONIndent(t, kitKeyFiles(t)),
		"kit/signing.json":   mustJSONIndent(t, kitSignings(t)),
		"kit/decisions.json": mustJSONIndent(t, kitDecisionFile(t)),
		"kit/bundles.json":   mustJSONIndent(t, index),
	}
	for name, b := range bundles {
		files[name] = b
	}
	for name, want := range files {
		path := filepath.Join("testdata", name)
		if *update {
			writeFile(t, path, want)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code makes (go test ./protocol -run Golden -update)", path)
		}
	}
	entries, err := os.ReadDir(kitDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := files["kit/"+e.Name()]; !ok {
			t.Errorf("%s/%s is not made by the code", kitDir, e.Name())
		}
	}
}

func mustJSONIndent(t *testing.T, v any) []byte {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestKitFromFilesAlone reads the kit as another implementation would —
// hex bytes and peer IDs, nothing of the fixtures — and gets the same
// answers: each key file's peer ID, each signature, each decision, each
// bundle's steps.
func TestKitFromFilesAlone(t *testing.T) {
	read := func(name string, v any) {
		b, err := os.ReadFile(filepath.Join(kitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var keys []kitKey
	read("keys.json", &keys)
	for _, k := range keys {
		key, err := crypto.UnmarshalPrivateKey(unhex(k.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil || id.String() != k.PeerID || string(id) != string(unhex(k.PeerIDBytes)) {
			t.Errorf("key %s: peer ID %s, want %s", k.Name, id, k.PeerID)
		}
	}
	var signings []kitSigning
	read("signing.json", &signings)
	for _, s := range signings {
		r, err := Parse(unhex(s.Record))
		if err != nil || !bytes.Equal(r.SigningInput(), unhex(s.SigningInput)) || r.CID().String() != s.CID {
			t.Errorf("signing %s: %v", s.Name, err)
		}
	}

	var file kitDecisions
	read("decisions.json", &file)
	anchors := file.Federation.anchors()
	for _, d := range file.Decisions {
		var recs []*Record
		for _, c := range d.Holds {
			r, err := Parse(unhex(file.Records[c]))
			if err != nil || r.CID().String() != c {
				t.Fatalf("%s: record %s: %v", d.Name, c, err)
			}
			recs = append(recs, r)
		}
		v := NewRecordView(anchors, recs)
		for _, c := range d.HoldsBlocks {
			b, err := DecodeDecisionBlock(unhex(file.Blocks[c]))
			if err != nil {
				t.Fatalf("%s: block %s: %v", d.Name, c, err)
			}
			v.AddBlock(RecordCID(unhex(file.Blocks[c])), b)
		}
		req, err := ParseTransferRequestJSON(d.Request)
		if err != nil {
			t.Fatalf("%s: request: %v", d.Name, err)
		}
		if cb, _ := encMode.Marshal(req); hex.EncodeToString(cb) != d.RequestCBOR {
			t.Errorf("%s: the request's JSON and CBOR forms differ", d.Name)
		}
		got, err := Decide(req, v, nil)
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		want := &DecisionBlock{Request: *req, Verdict: d.Verdict}
		for _, c := range d.Checks {
			ch := Check{ID: c.ID, OK: c.OK, Reason: c.Reason}
			if c.Evidence != "" {
				ec, _ := ParseCID(c.Evidence)
				ch.Evidence = LinkPtr(ec)
			}
			want.Checks = append(want.Checks, ch)
		}
		for _, e := range d.Evidence {
			ec, _ := ParseCID(e)
			want.Evidence = append(want.Evidence, LinkTo(ec))
		}
		if diff := got.Diff(want); diff != "" {
			t.Errorf("%s: %s", d.Name, diff)
		}
	}

	var bundles []kitBundle
	read("bundles.json", &bundles)
	for _, b := range bundles {
		car, err := os.ReadFile(filepath.Join("testdata", b.File))
		if err != nil {
			t.Fatal(err)
		}
		a := b.Federation.anchors()
		trust := BundleTrust{Federation: b.Federation.Name, Authorities: a.Authorities, FoundingNodes: a.FoundingNodes}
		rep := CheckBundleCAR(car, trust)
		var got []string
		for _, s := range rep.Steps {
			got = append(got, kitStepString(kitStep{ID: s.ID, OK: s.OK, Depth: s.Depth}))
		}
		var want []string
		for _, s := range b.Steps {
			want = append(want, kitStepString(s))
		}
		if rep.OK() != b.Holds || !slices.Equal(got, want) {
			t.Errorf("%s: holds %v, steps %v; want %v, %v", b.File, rep.OK(), got, b.Holds, want)
		}
	}
}

// anchors reads the federation's peer IDs.
func (f kitFederation) anchors() StaticAnchors {
	a := StaticAnchors{Authorities: map[string]peer.ID{}, FoundingNodes: map[peer.ID]string{}}
	for j, s := range f.Authorities {
		a.Authorities[j], _ = peer.Decode(s)
	}
	for s, j := range f.FoundingNodes {
		id, _ := peer.Decode(s)
		a.FoundingNodes[id] = j
	}
	return a
}

func kitStepString(s kitStep) string {
	return fmt.Sprintf("%s ok=%v depth=%d", s.ID, s.OK, s.Depth)
}
