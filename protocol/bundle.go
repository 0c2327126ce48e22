package protocol

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	"golang.org/x/mod/sumdb/tlog"
)

// BundleVersion is the manifest's "v".
const BundleVersion = 1

// Limits of a bundle, checked before anything is decoded.
const (
	// MaxBundleSize bounds a bundle's CAR file, in bytes.
	MaxBundleSize = 32 << 20
	// MaxBundleBlocks bounds its blocks, the manifest included.
	MaxBundleBlocks = 1 << 16
	// MaxBundleCheckpoint bounds the checkpoint note (with cosignatures).
	MaxBundleCheckpoint = 16 << 10
	// maxProofHashes bounds a proof: a tree of 2^63 leaves needs 63
	// hashes for an inclusion proof and twice that for consistency.
	maxProofHashes = 128
	// maxCARHeader bounds the CAR header, which holds one root.
	maxCARHeader = 1 << 10
)

// The steps of CheckBundle, by stable ID, in the order it reports them.
const (
	StepCAR                = "bundle.car"
	StepBlocks             = "bundle.blocks"
	StepManifest           = "bundle.manifest"
	StepRecords            = "records.signed"
	StepReceiptIssuer      = "receipt.issuer"
	StepDecisionBlock      = "decision.block"
	StepCheckpoint         = "log.checkpoint"
	StepInclusion          = "log.inclusion"
	StepConsistency        = "log.consistency"
	StepEvidenceHeld       = "evidence.held"
	StepEvidenceAuthorized = "evidence.authorized"
	StepDecision           = "decision.recomputed"
	StepAncestor           = "lineage.ancestor"
)

// BundleManifest is the manifest block of a bundle.
type BundleManifest struct {
	V       int64 `cbor:"v"`
	Receipt Link  `cbor:"receipt"`
	// Item is the decision's index in the receipt's decisions.
	Item int64 `cbor:"item"`
	// Lineage lists the decision blocks of the decision's ancestors the
	// bundle carries, parent first (blocks 4 on).
	Lineage     []Link        `cbor:"lineage"`
	Checkpoint  []byte        `cbor:"checkpoint"`
	Consistency [][]byte      `cbor:"consistency"`
	Proofs      []BundleProof `cbor:"proofs"`
	// Withheld lists the evidence the bundle leaves out because the caller
	// it was made for may not see it (DESIGN.md §6): incidents only, in
	// ascending order of binary CID. Absent when nothing is withheld.
	Withheld []BundleWithheld `cbor:"withheld,omitempty"`
}

// BundleWithheld is evidence a bundle withholds: its CID and its kind.
type BundleWithheld struct {
	CID  Link `cbor:"cid"`
	Kind Kind `cbor:"kind"`
}

// BundleProof is a record's inclusion proof in the manifest's checkpoint.
type BundleProof struct {
	CID    Link     `cbor:"cid"`
	Index  int64    `cbor:"index"`
	Hashes [][]byte `cbor:"hashes"`
}

// Encode returns the manifest's canonical DAG-CBOR encoding, after
// checking it as DecodeBundleManifest would.
func (m *BundleManifest) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	b, err := encMode.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b, nil
}

// DecodeBundleManifest decodes a manifest block: the canonical encoding
// of a manifest of version 1 whose links are record IDs and whose hashes
// are 32 bytes. Errors are *Error, the field a path in the manifest.
func DecodeBundleManifest(b []byte) (*BundleManifest, error) {
	var m BundleManifest
	if err := decodeStrict(b, &m, ""); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *BundleManifest) validate() error {
	if m.V != BundleVersion {
		return errf(CodeMalformed, "v", "unsupported bundle version %d (this build reads %d)", m.V, BundleVersion)
	}
	if !IsRecordID(m.Receipt.Cid) {
		return errf(CodeMalformed, "receipt", "not a record ID")
	}
	if m.Item < 0 || m.Item >= MaxDecisions {
		return errf(CodeMalformed, "item", "%d is not a decision's index (0 to %d)", m.Item, MaxDecisions-1)
	}
	if len(m.Lineage) > MaxLineage {
		return errf(CodeMalformed, "lineage", "%d ancestors (at most %d)", len(m.Lineage), MaxLineage)
	}
	for i, l := range m.Lineage {
		if !IsRecordID(l.Cid) {
			return errf(CodeMalformed, fmt.Sprintf("lineage[%d]", i), "not a block ID")
		}
	}
	if len(m.Checkpoint) == 0 || len(m.Checkpoint) > MaxBundleCheckpoint {
		return errf(CodeMalformed, "checkpoint", "a note of %d bytes (1 to %d)", len(m.Checkpoint), MaxBundleCheckpoint)
	}
	if err := checkHashes("consistency", m.Consistency); err != nil {
		return err
	}
	if len(m.Proofs) > MaxBundleBlocks {
		return errf(CodeMalformed, "proofs", "%d proofs (at most %d)", len(m.Proofs), MaxBundleBlocks)
	}
	for i, p := range m.Proofs {
		at := fmt.Sprintf("proofs[%d]", i)
		if !IsRecordID(p.CID.Cid) {
			return errf(CodeMalformed, at+".cid", "not a record ID")
		}
		if p.Index < 0 {
			return errf(CodeMalformed, at+".index", "must not be negative")
		}
		if err := checkHashes(at+".hashes", p.Hashes); err != nil {
			return err
		}
	}
	if len(m.Withheld) > MaxBundleBlocks {
		return errf(CodeMalformed, "withheld", "%d records (at most %d)", len(m.Withheld), MaxBundleBlocks)
	}
	for i, w := range m.Withheld {
		at := fmt.Sprintf("withheld[%d]", i)
		if !IsRecordID(w.CID.Cid) {
			return errf(CodeMalformed, at+".cid", "not a record ID")
		}
		if w.Kind != KindIncident {
			return errf(CodeMalformed, at+".kind", "%q: only incidents are withheld", w.Kind)
		}
		if i > 0 && string(m.Withheld[i-1].CID.Bytes()) >= string(w.CID.Bytes()) {
			return errf(CodeMalformed, at+".cid", "not in ascending order of binary CID, or listed twice")
		}
	}
	return nil
}

func checkHashes(field string, hs [][]byte) error {
	if len(hs) > maxProofHashes {
		return errf(CodeMalformed, field, "%d hashes (at most %d)", len(hs), maxProofHashes)
	}
	for i, h := range hs {
		if len(h) != tlog.HashSize {
			return errf(CodeMalformed, fmt.Sprintf("%s[%d]", field, i), "a hash of %d bytes, want %d", len(h), tlog.HashSize)
		}
	}
	return nil
}

func toHashes(hs [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		copy(out[i][:], h)
	}
	return out
}

// HashBytes converts proof hashes to the manifest's form.
func HashBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = slices.Clone(hs[i][:])
	}
	return out
}

// BundleBlock is one block of a bundle's CAR, as it was read: its CID
// need not match its bytes until CheckBundle says so.
type BundleBlock struct {
	CID  cid.Cid
	Data []byte
}

// Bundle is a receipt bundle read from, or to be written as, its CAR
// file: the root and the blocks in file order.
//
// A receipt bundle (DESIGN.md §6) holds everything needed to re-check a
// decision offline, with no node to ask: the receipt, the decision, the
// records it read, the issuing node's signed checkpoint and the proofs
// that the node logged all of them, and the decision's lineage: for a
// resale, the ancestor decisions through which the data came, each with
// its receipt and the records it read. An auditor checks it against the
// federation file alone (CheckBundle; `entente receipt check`).
//
// A bundle is a CAR v1 file (ipld.io/specs/transport/car/carv1): the
// header — an unsigned varint length, then the DAG-CBOR map
// {"roots": [R], "version": 1} — and then one section per block: a
// varint of the section's length, the block's binary CID, the block's
// bytes. There is exactly one root, R, the receipt's CID, and the blocks
// come each once, in this order:
//
//  1. the receipt (CID R);
//  2. the manifest (below);
//  3. the decision block the bundle is of: the receipt's decisions[item];
//  4. the decision blocks of its ancestors, in the manifest's lineage
//     order (parent first), none for a decision without a parent;
//  5. every other record of the bundle, in ascending order of binary CID.
//
// Every block's CID is CIDv1, dag-cbor (0x71), sha2-256 of the block's
// bytes. The manifest and the decision blocks are found by their
// positions; they are the blocks that are not records. A bundle is of
// one decision of its receipt: the receipt names its other decisions by
// CID, and their blocks are not in it. The CAR's bytes are a function of
// the blocks: ReadBundle refuses any other framing of them.
//
// The manifest is the canonical DAG-CBOR encoding (strict, as records) of
//
//	{
//	  "v": 1,
//	  "item": int,
//	  "proofs": [{"cid": link, "index": int, "hashes": [bytes]}, ...],
//	  "lineage": [link],
//	  "receipt": link to R,
//	  "withheld": [{"cid": link, "kind": "incident"}, ...],   (absent when empty)
//	  "checkpoint": bytes,
//	  "consistency": [bytes]
//	}
//
// whose fields are:
//
//   - checkpoint: the signed note of a checkpoint of the issuing node's
//     log (a LogCheckpoint: origin entente/<federation>/<node peer ID>,
//     size, root) whose tree holds the receipt and every record of the
//     bundle;
//   - item: the index of the bundle's decision among the receipt's;
//   - lineage: the CIDs of the ancestors' decision blocks the bundle
//     carries (at most MaxLineage), parent first: ancestor k is decision
//     parent.item of receipt parent.receipt, where parent is the request's
//     of ancestor k−1 (of the bundle's decision for k = 1);
//   - proofs: one per record, in block order (the receipt first): the
//     record's leaf index in that tree and its inclusion proof
//     (tlog.ProveRecord; 32-byte hashes), for the leaf hash
//     tlog.RecordHash of the record's binary CID;
//   - consistency: the proof (tlog.ProveTree) that the tree the receipt
//     names — its body's checkpoint {size, root}, the log just before the
//     receipt was appended — is a prefix of the checkpoint's tree; empty
//     when the two sizes are equal or the receipt's tree is empty;
//   - withheld: evidence the bundle leaves out because the caller it was
//     made for may not see it (DESIGN.md §6; protocol.MayRead): incident
//     notices only, in ascending order of binary CID, each evidence of the
//     decision or of an ancestor. Nothing else may be missing.
//
// The records besides the receipt are those its decision read at the
// node (node.Bundle re-runs Decide and Authorize on the records the node
// held before the receipt, and keeps every record they returned): the
// evidence, the accreditations and revocations behind it, the rulesets
// and incident notices considered, and the same for every ancestor
// (whose receipts are records of the bundle too). TLP:RED notices a
// decision read are among them. Every record of the bundle is in the
// issuing node's log: it held them all. Ancestors are proved by their
// receipts' signatures and their issuers' accreditations, not by other
// nodes' logs.
//
// CheckBundle checks, in this order, each step reported under its ID:
//
//	bundle.car           the file is a CAR v1 of one root (CheckBundleCAR)
//	bundle.blocks        every block's CID is the sha2-256 of its bytes; the root comes first and only once
//	bundle.manifest      the manifest decodes, version 1, for the root receipt; the lineage blocks follow the decision, then the records in CID order
//	records.signed       every record is canonical and signed by its issuer; the root is a receipt
//	receipt.issuer       the receipt's issuer may issue receipts (Authorize: a founding node, or a live node accreditation)
//	decision.block       block 3 is the receipt's decisions[item], a valid decision block; so are the lineage blocks
//	log.checkpoint       the checkpoint note is signed by the receipt's issuer under its origin
//	log.inclusion        every record, the receipt first, is in the checkpoint's tree
//	log.consistency      the tree the receipt names is a prefix of the checkpoint's, and the receipt comes after it
//	evidence.held        every record of the decision's evidence is in the bundle, or withheld as the manifest lists
//	evidence.authorized  every evidence record's issuer may issue it (Authorize, against the bundle)
//	decision.recomputed  Decide on the bundle's records gives the decision's verdict, checks and evidence;
//	                     with withheld evidence, every check but incident.clear (neither confirmed nor
//	                     refuted: BundleReport.WithheldChecks), the verdict unless that check failed,
//	                     and evidence among the decision's
//	lineage.ancestor     once per ancestor, parent first (BundleStep.Depth 1, 2, ...): its receipt is in the
//	                     bundle and names its block, its issuer may issue receipts, its evidence is held and
//	                     authorized, and Decide gives its verdict, checks and evidence again
//
// Authorisation and the decision read the bundle's records and the
// federation file's authorities and founding nodes, nothing else. An
// ancestor is recomputed from the bundle's records issued no later than
// its receipt: the records its node could have known. A step whose
// inputs an earlier step could not provide is reported as skipped.
type Bundle struct {
	Root   cid.Cid
	Blocks []BundleBlock
}

// NewBundle lays out a bundle: the receipt, the manifest, the decision
// block (its encoding), the ancestors' decision blocks (parent first;
// NewBundle sets the manifest's lineage to their CIDs), then records (the
// receipt and repeats left out) in ascending order of binary CID. The
// manifest's proofs follow BundleRecords(receipt, records).
func NewBundle(receipt *Record, manifest *BundleManifest, decision []byte, lineage [][]byte, records []*Record) (*Bundle, error) {
	if receipt == nil || receipt.Kind() != KindReceipt {
		return nil, errors.New("bundle: the root must be a receipt")
	}
	manifest.Lineage = make([]Link, len(lineage))
	for i, blk := range lineage {
		manifest.Lineage[i] = LinkTo(RecordCID(blk))
	}
	mb, err := manifest.Encode()
	if err != nil {
		return nil, fmt.Errorf("bundle: manifest: %w", err)
	}
	ordered := BundleRecords(receipt, records)
	b := &Bundle{Root: receipt.CID(), Blocks: make([]BundleBlock, 0, 2+len(lineage)+len(ordered))}
	b.Blocks = append(b.Blocks, BundleBlock{receipt.CID(), receipt.Bytes()}, BundleBlock{RecordCID(mb), mb},
		BundleBlock{RecordCID(decision), decision})
	for _, blk := range lineage {
		b.Blocks = append(b.Blocks, BundleBlock{RecordCID(blk), blk})
	}
	for _, r := range ordered[1:] {
		b.Blocks = append(b.Blocks, BundleBlock{r.CID(), r.Bytes()})
	}
	return b, nil
}

// BundleRecords lists the records of the bundle of receipt in the order
// of its blocks and of its manifest's proofs: the receipt, then the
// other records (repeats and the receipt left out) in ascending order of
// binary CID.
func BundleRecords(receipt *Record, records []*Record) []*Record {
	rest := make([]*Record, 0, len(records))
	for _, r := range records {
		if !r.CID().Equals(receipt.CID()) {
			rest = append(rest, r)
		}
	}
	slices.SortFunc(rest, func(a, b *Record) int { return strings.Compare(a.CID().KeyString(), b.CID().KeyString()) })
	rest = slices.CompactFunc(rest, func(a, b *Record) bool { return a.CID().Equals(b.CID()) })
	return append([]*Record{receipt}, rest...)
}

// MarshalCAR writes the bundle as a CAR v1.
func (b *Bundle) MarshalCAR() ([]byte, error) {
	var buf bytes.Buffer
	w, err := carstorage.NewWritable(&buf, []cid.Cid{b.Root}, carv2.WriteAsCarV1(true), carv2.AllowDuplicatePuts(true))
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	for _, blk := range b.Blocks {
		if err := w.Put(context.Background(), blk.CID.KeyString(), blk.Data); err != nil {
			return nil, fmt.Errorf("bundle: block %s: %w", blk.CID, err)
		}
	}
	if err := w.Finalize(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return buf.Bytes(), nil
}

// ReadBundle reads a bundle's CAR framing: a CAR v1 of one root and at
// most MaxBundleBlocks blocks, none repeated, in at most MaxBundleSize
// bytes, framed exactly as MarshalCAR frames them. It does not look
// inside the blocks or compare them with their CIDs: CheckBundle does.
func ReadBundle(car []byte) (*Bundle, error) {
	if len(car) > MaxBundleSize {
		return nil, fmt.Errorf("bundle: %d bytes, over the %d-byte limit", len(car), MaxBundleSize)
	}
	limit := uint64(len(car)) // no header or section is longer than the file
	br, err := carv2.NewBlockReader(bytes.NewReader(car), carv2.WithTrustedCAR(true),
		carv2.MaxAllowedHeaderSize(min(limit, maxCARHeader)), carv2.MaxAllowedSectionSize(limit))
	if err != nil {
		return nil, fmt.Errorf("bundle: not a CAR: %w", err)
	}
	if br.Version != 1 {
		return nil, fmt.Errorf("bundle: a CAR v%d; a bundle is a CAR v1", br.Version)
	}
	if len(br.Roots) != 1 {
		return nil, fmt.Errorf("bundle: the CAR has %d roots; a bundle has one, its receipt", len(br.Roots))
	}
	b := &Bundle{Root: br.Roots[0]}
	seen := map[string]int{}
	for {
		blk, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: block %d: %w", len(b.Blocks)+1, err)
		}
		if len(b.Blocks) == MaxBundleBlocks {
			return nil, fmt.Errorf("bundle: more than %d blocks", MaxBundleBlocks)
		}
		c := blk.Cid()
		if prev, dup := seen[c.KeyString()]; dup {
			return nil, fmt.Errorf("bundle: block %d repeats block %d (%s)", len(b.Blocks)+1, prev+1, c)
		}
		seen[c.KeyString()] = len(b.Blocks)
		b.Blocks = append(b.Blocks, BundleBlock{CID: c, Data: blk.RawData()})
	}
	again, err := b.MarshalCAR()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, car) {
		return nil, errors.New("bundle: the CAR is not framed canonically (header, section lengths or CIDs written in a non-minimal form)")
	}
	return b, nil
}
