package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Regenerate with: go test ./protocol -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/golden")

const goldenDir = "testdata/golden"

// goldenEntry is one line of testdata/golden/vectors.json.
type goldenEntry struct {
	Name   string `json:"name"`
	CID    string `json:"cid"`
	Kind   Kind   `json:"kind"`
	Issuer string `json:"issuer"`
}

// invalidVector is one entry of testdata/golden/invalid.json: bytes that
// Parse must refuse with Code.
type invalidVector struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Code        Code   `json:"code"`
	Hex         string `json:"hex"`
}

type goldenRecord struct {
	name string
	key  crypto.PrivKey
	rec  *Record
}

// goldenRecords makes one valid record of each kind, from fixed keys and
// times; they link to one another where a kind links.
func goldenRecords(t testing.TB) []goldenRecord {
	authDE, node, ctrl, reg := seedKey(seedAuthorityDE), seedKey(seedNodeDE), seedKey(seedControllerDE), seedKey(seedRegulatorDE)

	acc := mustSign(t, authDE, t0-30*day, baseAccreditation())
	rules := mustSign(t, authDE, t0-2*day, baseRuleset())
	consent := mustSign(t, ctrl, t0-day, baseConsent())

	rb := baseRevocation()
	rb.Target = LinkTo(consent.CID())
	revocation := mustSign(t, ctrl, t0+30*minute, rb)

	incident := mustSign(t, reg, t0-hour, baseIncident())

	_, decision := goldenDecision(t, consent, acc)
	rcpt := mustSign(t, node, t0+2*hour, NewReceipt([]cid.Cid{decision}, Checkpoint{Size: 42, Root: sha("tree of 42")}))

	return []goldenRecord{
		{"accreditation", authDE, acc},
		{"ruleset", authDE, rules},
		{"consent", ctrl, consent},
		{"revocation", ctrl, revocation},
		{"incident", reg, incident},
		{"receipt", node, rcpt},
	}
}

// goldenDecision is the decision block the golden receipt signs: an
// allow of the golden consent, relying on it and the accreditation.
func goldenDecision(t testing.TB, consent, acc *Record) ([]byte, cid.Cid) {
	t.Helper()
	b := baseDecision()
	b.Request.Consent = LinkTo(consent.CID())
	b.Checks[0].Evidence = LinkPtr(consent.CID())
	b.Checks[1].Evidence = LinkPtr(acc.CID())
	b.Evidence = []Link{LinkTo(consent.CID()), LinkTo(acc.CID())}
	slices.SortFunc(b.Evidence, func(a, b Link) int { return bytes.Compare(a.Bytes(), b.Bytes()) })
	enc, c, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return enc, c
}

// invalidVectors builds, from the golden records, byte strings that break
// exactly one rule each. Where the fault leaves a signable map, the vector
// is re-signed so that the fault named is the only one.
func invalidVectors(t testing.TB) []invalidVector {
	g := goldenRecords(t)
	byName := map[string]goldenRecord{}
	for _, r := range g {
		byName[r.name] = r
	}
	var out []invalidVector
	add := func(name, desc string, code Code, b []byte) {
		out = append(out, invalidVector{Name: name, Description: desc, Code: code, Hex: hex.EncodeToString(b)})
	}
	// mut copies a golden record's tree, applies f and re-signs.
	mut := func(kind string, f func(m cborMap) cborMap) []byte {
		gr := byName[kind]
		return resign(f(clone(recordTree(gr.rec)).(cborMap)), gr.key)
	}
	acc := byName["accreditation"].rec.Bytes()

	add("empty", "no bytes at all", CodeMalformed, nil)
	add("not-a-map", "a CBOR array where the record map belongs", CodeMalformed, treeEncode([]any{int64(1)}))
	add("trailing-bytes", "a valid record followed by one more byte", CodeMalformed, append(slices.Clip(acc), 0x00))
	add("truncated", "a valid record missing its last byte", CodeMalformed, acc[:len(acc)-1])
	add("key-order-envelope", "envelope keys \"kind\" and \"body\" swapped (length-first order puts body first)", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap {
			i, j := m.index("body"), m.index("kind")
			m[i], m[j] = m[j], m[i]
			return m
		}))
	add("key-order-body", "body keys sorted bytewise instead of length-first", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap {
			b := m.get("body").(cborMap)
			slices.SortFunc(b, func(x, y cborKV) int {
				if x.K < y.K {
					return -1
				}
				return 1
			})
			return m.set("body", b)
		}))
	add("non-minimal-int", "v written as 0x1b 00 00 00 00 00 00 00 01", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap { return m.set("v", cborWideUint(1)) }))
	add("non-minimal-length", "the kind string's length written in two bytes (0x78 0x0d)", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap {
			return m.set("kind", cborRaw(append([]byte{0x78, 13}, "accreditation"...)))
		}))
	add("indefinite-map", "the body as an indefinite-length map", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap {
			return m.set("body", cborIndefMap(m.get("body").(cborMap)))
		}))
	add("indefinite-string", "the issuer as an indefinite-length text string of one chunk", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap {
			s := m.get("issuer").(string)
			return m.set("issuer", cborRaw(append(append([]byte{0x7f}, treeEncode(s)...), 0xff)))
		}))
	add("float-for-int", "issued_at written as a float64", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap {
			return m.set("issued_at", float64(m.get("issued_at").(int64)))
		}))
	add("float-for-int-body", "body.version written as the float64 2.0", CodeMalformed,
		mut("ruleset", func(m cborMap) cborMap { return m.set("body.version", float64(2)) }))
	add("tag-not-42", "body.effective_at wrapped in tag 6 (read past, so the canonical form differs)", CodeNonCanonical,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.effective_at", cborTag{6, m.get("body.effective_at")})
		}))
	add("tag-not-42-link", "a link written with tag 43 instead of 42", CodeMalformed,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.target", cborTag{43, m.get("body.target").(cborTag).V})
		}))
	add("tag-42-not-link", "tag 42 around body.reason, a string field (read past, so the canonical form differs)", CodeNonCanonical,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.reason", cborTag{42, m.get("body.reason")})
		}))
	add("tag-bignum", "body.effective_at as a bignum (tag 2)", CodeMalformed,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.effective_at", cborTag{2, binary.BigEndian.AppendUint64(nil, uint64(m.get("body.effective_at").(int64)))})
		}))
	add("tag-1-on-string", "tag 1 (epoch time) around body.reason, a string", CodeMalformed,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.reason", cborTag{1, m.get("body.reason")})
		}))
	add("link-no-zero-prefix", "a link's bytes without the leading zero (identity multibase) byte", CodeMalformed,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.target", cborTag{42, m.get("body.target").(cborTag).V.([]byte)[1:]})
		}))
	add("link-cidv0", "a link to a CIDv0 (dag-pb) instead of a record ID", CodeInvalidBody,
		mut("revocation", func(m cborMap) cborMap {
			return m.set("body.target", cborTag{42, append([]byte{0}, sha256Multihash("x")...)})
		}))
	add("duplicate-key", "the envelope holds \"v\" twice", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return append(cborMap{{"v", int64(1)}}, m...) }))
	add("duplicate-key-body", "the body holds \"name\" twice", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap {
			b := m.get("body").(cborMap)
			i := b.index("name")
			b = slices.Insert(b, i, b[i])
			return m.set("body", b)
		}))
	add("unknown-field-envelope", "an extra envelope field \"note\"", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("note", "hello") }))
	add("unknown-field-body", "an extra body field \"comment\"", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("body.comment", "hello") }))
	add("missing-field-envelope", "no issued_at", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.del("issued_at") }))
	add("missing-sig", "no sig", CodeMalformed,
		treeEncode(recordTree(byName["accreditation"].rec).del("sig")))
	add("missing-field-body", "no body.valid_until", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.del("body.valid_until") }))
	add("missing-field-nested", "no body.export.max_tier", CodeMalformed,
		mut("ruleset", func(m cborMap) cborMap { return m.del("body.export.max_tier") }))
	add("null-optional", "body.supersedes present as null instead of left out", CodeNonCanonical,
		mut("consent", func(m cborMap) cborMap { return m.set("body.supersedes", nil) }))
	add("empty-optional-list", "body.addrs present as [] instead of left out", CodeNonCanonical,
		mut("accreditation", func(m cborMap) cborMap { return m.set("body.addrs", []any{}) }))
	add("wrong-type", "issuer as bytes instead of a string", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("issuer", []byte(m.get("issuer").(string))) }))
	add("body-not-a-map", "body as a string", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("body", "accredited") }))
	add("unsorted-set", "body.purposes out of order", CodeInvalidBody,
		mut("consent", func(m cborMap) cborMap {
			return m.set("body.purposes", []any{"research", "identity-verification"})
		}))
	add("duplicate-in-set", "body.categories lists face twice", CodeInvalidBody,
		mut("consent", func(m cborMap) cborMap { return m.set("body.categories", []any{"face", "face"}) }))
	add("receipt-no-decisions", "a receipt that signs no decision", CodeInvalidBody,
		mut("receipt", func(m cborMap) cborMap { return m.set("body.decisions", []any{}) }))
	add("lower-case-jurisdiction", "body.jurisdiction \"de\"", CodeInvalidBody,
		mut("accreditation", func(m cborMap) cborMap { return m.set("body.jurisdiction", "de") }))
	add("lower-case-destination", "body.destinations [\"br\", \"fr\"]", CodeInvalidBody,
		mut("consent", func(m cborMap) cborMap { return m.set("body.destinations", []any{"br", "fr"}) }))
	add("bad-severity", "body.severity \"severe\"", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.set("body.severity", "severe") }))
	add("severity-none", "an incident of severity \"none\" (only a threshold)", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.set("body.severity", "none") }))
	add("bad-tlp", "body.tlp \"white\" (TLP 1.0)", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.set("body.tlp", "white") }))
	add("bad-status", "body.status \"closed\"", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.set("body.status", "closed") }))
	add("bad-role", "body.roles [\"admin\"]", CodeInvalidBody,
		mut("accreditation", func(m cborMap) cborMap { return m.set("body.roles", []any{"admin"}) }))
	add("bad-category", "body.categories [\"dna\"]", CodeInvalidBody,
		mut("consent", func(m cborMap) cborMap { return m.set("body.categories", []any{"dna"}) }))
	add("bad-block-on-incident", "body.import.block_on_incident \"severe\"", CodeInvalidBody,
		mut("ruleset", func(m cborMap) cborMap { return m.set("body.import.block_on_incident", "severe") }))
	add("short-checkpoint-root", "a receipt's checkpoint root of 31 bytes", CodeInvalidBody,
		mut("receipt", func(m cborMap) cborMap { return m.set("body.checkpoint.root", make([]byte, 31)) }))
	add("tlp-red-no-recipients", "tlp red without recipients", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.del("body.recipients") }))
	add("recipients-not-red", "recipients with tlp amber", CodeInvalidBody,
		mut("incident", func(m cborMap) cborMap { return m.set("body.tlp", "amber") }))
	add("short-subject", "a consent subject of 31 bytes", CodeInvalidBody,
		mut("consent", func(m cborMap) cborMap { return m.set("body.subject", make([]byte, 31)) }))
	add("wrong-signature", "the signature's first byte flipped", CodeBadSignature,
		func() []byte {
			m := recordTree(byName["accreditation"].rec)
			sig := m.get("sig").([]byte)
			sig[0] ^= 0x01
			return treeEncode(m.set("sig", sig))
		}())
	add("signed-by-another-key", "signed by a key other than the issuer's", CodeBadSignature,
		resign(recordTree(byName["accreditation"].rec), seedKey(seedStranger)))
	add("unknown-kind", "kind \"opinion\"", CodeUnknownKind,
		mut("accreditation", func(m cborMap) cborMap { return m.set("kind", "opinion") }))
	add("kind-mismatch", "kind \"consent\" over an accreditation body", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("kind", "consent") }))
	add("sig-wrong-length", "a 63-byte signature", CodeMalformed,
		func() []byte {
			m := recordTree(byName["accreditation"].rec)
			return treeEncode(m.set("sig", m.get("sig").([]byte)[:63]))
		}())
	add("version-2", "v = 2", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("v", int64(2)) }))
	add("issuer-not-peer-id", "issuer is not a peer ID", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("issuer", "bfdi") }))
	add("negative-issued-at", "issued_at = -1", CodeMalformed,
		mut("accreditation", func(m cborMap) cborMap { return m.set("issued_at", int64(-1)) }))
	add("oversize", fmt.Sprintf("an otherwise valid incident of more than %d bytes", MaxRecordSize), CodeTooLarge,
		oversizeIncident(t))
	return out
}

// sha256Multihash returns the binary CIDv0 of s: a bare sha2-256 multihash.
func sha256Multihash(s string) []byte { return append([]byte{0x12, 0x20}, sha(s)...) }

// oversizeIncident is a well-formed, validly signed incident naming so many
// affected keys that it exceeds MaxRecordSize. It is built with the tree
// codec, because Sign refuses to make it.
func oversizeIncident(t testing.TB) []byte {
	var ids []string
	for i := 0; len(ids)*50 < MaxRecordSize; i++ {
		ids = append(ids, keyID(keyFromSeed(sha(fmt.Sprint("affected ", i)))).String())
	}
	slices.Sort(ids)
	affected := make([]any, len(ids))
	for i, id := range ids {
		affected[i] = id
	}
	reg := seedKey(seedRegulatorDE)
	b := baseIncident()
	b.Affected = ids[:1]
	small := mustSign(t, reg, t0, b)
	m := recordTree(small).set("body.affected", affected)
	return resign(m, reg)
}

// readJSON reads testdata file path (relative to the package) into v.
func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./protocol -run Golden -update)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, append(b, '\n'))
}

// TestGoldenValid checks that the stored valid vectors are what the code
// makes, and that each parses and re-encodes to identical bytes with its
// stored CID.
func TestGoldenValid(t *testing.T) {
	g := goldenRecords(t)
	if *update {
		var index []goldenEntry
		for _, gr := range g {
			js, err := gr.rec.JSON()
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(goldenDir, gr.name+".cbor"), gr.rec.Bytes())
			writeFile(t, filepath.Join(goldenDir, gr.name+".json"), js)
			index = append(index, goldenEntry{gr.name, gr.rec.CID().String(), gr.rec.Kind(), gr.rec.Issuer().String()})
		}
		writeJSON(t, filepath.Join(goldenDir, "vectors.json"), index)
	}

	var index []goldenEntry
	readJSON(t, filepath.Join(goldenDir, "vectors.json"), &index)
	if len(index) != len(g) {
		t.Fatalf("vectors.json lists %d records, the code makes %d", len(index), len(g))
	}
	kinds := map[Kind]bool{}
	for i, e := range index {
		t.Run(e.Name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(goldenDir, e.Name+".cbor"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, g[i].rec.Bytes()) {
				t.Fatalf("%s.cbor differs from what the code makes (regenerate with -update if the change is intended)", e.Name)
			}
			r, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := r.CID().String(); got != e.CID {
				t.Errorf("CID = %s, vectors.json says %s", got, e.CID)
			}
			if r.Kind() != e.Kind || r.Issuer().String() != e.Issuer {
				t.Errorf("kind/issuer = %s/%s, vectors.json says %s/%s", r.Kind(), r.Issuer(), e.Kind, e.Issuer)
			}
			kinds[r.Kind()] = true

			// Re-encode from the decoded parts: same bytes.
			again, err := Sign(g[i].key, r.IssuedAt(), r.Body())
			if err != nil {
				t.Fatalf("re-sign: %v", err)
			}
			if !bytes.Equal(again.Bytes(), raw) {
				t.Errorf("re-encoding the decoded record gives different bytes")
			}
			if !bytes.Equal(treeEncode(treeDecode(raw)), raw) {
				t.Errorf("the test tree codec does not round-trip the record")
			}

			js, err := os.ReadFile(filepath.Join(goldenDir, e.Name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			view, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(view, js) {
				t.Errorf("%s.json differs from the record's DAG-JSON view:\n got %s\nfile %s", e.Name, view, js)
			}
			fromJSON, err := RecordFromJSON(js)
			if err != nil {
				t.Fatalf("RecordFromJSON: %v", err)
			}
			if !fromJSON.CID().Equals(r.CID()) {
				t.Errorf("RecordFromJSON gives CID %s, want %s", fromJSON.CID(), r.CID())
			}
		})
	}
	for _, k := range Kinds {
		if !kinds[k] {
			t.Errorf("no golden vector of kind %s", k)
		}
	}
}

// TestGoldenInvalid checks that every stored invalid vector is refused by
// Parse with exactly its code, and that the stored set is what the code
// makes.
func TestGoldenInvalid(t *testing.T) {
	want := invalidVectors(t)
	if *update {
		writeJSON(t, filepath.Join(goldenDir, "invalid.json"), want)
	}
	var got []invalidVector
	readJSON(t, filepath.Join(goldenDir, "invalid.json"), &got)
	if !slices.Equal(got, want) {
		t.Errorf("invalid.json differs from the vectors the code makes (regenerate with -update if the change is intended)")
	}
	names := map[string]bool{}
	for _, v := range got {
		if names[v.Name] {
			t.Errorf("duplicate vector name %q", v.Name)
		}
		names[v.Name] = true
		t.Run(v.Name, func(t *testing.T) {
			b, err := hex.DecodeString(v.Hex)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(b)
			if err == nil {
				t.Fatalf("Parse accepted %s (%s), want %s", r.CID(), v.Description, v.Code)
			}
			if code := CodeOf(err); code != v.Code {
				t.Errorf("Parse: %v\ncode %q, want %q (%s)", err, code, v.Code, v.Description)
			}
		})
	}
}
