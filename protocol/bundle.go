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
	"github.com/libp2p/go-libp2p/core/peer"
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
)

// BundleManifest is the manifest block of a bundle.
type BundleManifest struct {
	V       int64 `cbor:"v"`
	Receipt Link  `cbor:"receipt"`
	// Item is the decision's index in the receipt's decisions.
	Item        int64         `cbor:"item"`
	Checkpoint  []byte        `cbor:"checkpoint"`
	Consistency [][]byte      `cbor:"consistency"`
	Proofs      []BundleProof `cbor:"proofs"`
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
// receipt offline, with no node to ask: the receipt, the records its
// decision read, the issuing node's signed checkpoint and the proofs that
// the node logged all of them. An auditor checks it against the
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
//  4. every other record of the bundle, in ascending order of binary CID.
//
// Every block's CID is CIDv1, dag-cbor (0x71), sha2-256 of the block's
// bytes. The manifest and the decision block are found by their
// positions; they are the two blocks that are not records. A bundle is of
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
//	  "receipt": link to R,
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
//   - proofs: one per record, in block order (the receipt first): the
//     record's leaf index in that tree and its inclusion proof
//     (tlog.ProveRecord; 32-byte hashes), for the leaf hash
//     tlog.RecordHash of the record's binary CID;
//   - consistency: the proof (tlog.ProveTree) that the tree the receipt
//     names — its body's checkpoint {size, root}, the log just before the
//     receipt was appended — is a prefix of the checkpoint's tree; empty
//     when the two sizes are equal or the receipt's tree is empty.
//
// The records besides the receipt are those its decision read at the
// node (node.Bundle re-runs Decide and Authorize on the records the node
// held before the receipt, and keeps every record they returned): the
// evidence, the accreditations and revocations behind it, the rulesets
// and incident notices considered. TLP:RED notices a decision read are
// among them.
//
// CheckBundle checks, in this order, each step reported under its ID:
//
//	bundle.car           the file is a CAR v1 of one root (CheckBundleCAR)
//	bundle.blocks        every block's CID is the sha2-256 of its bytes; receipt, manifest, records in CID order
//	bundle.manifest      the manifest decodes, version 1, for the root receipt
//	records.signed       every record is canonical and signed by its issuer; the root is a receipt
//	receipt.issuer       the receipt's issuer may issue receipts (Authorize: a founding node, or a live node accreditation)
//	decision.block       block 3 is the receipt's decisions[item], a valid decision block
//	log.checkpoint       the checkpoint note is signed by the receipt's issuer under its origin
//	log.inclusion        every record, the receipt first, is in the checkpoint's tree
//	log.consistency      the tree the receipt names is a prefix of the checkpoint's, and the receipt comes after it
//	evidence.held        every record of the decision's evidence is in the bundle
//	evidence.authorized  every evidence record's issuer may issue it (Authorize, against the bundle)
//	decision.recomputed  Decide on the bundle's records gives the decision's verdict, checks and evidence
//
// Authorisation and the decision read the bundle's records and the
// federation file's authorities and founding nodes, nothing else. A step
// whose inputs an earlier step could not provide is reported as skipped.
type Bundle struct {
	Root   cid.Cid
	Blocks []BundleBlock
}

// NewBundle lays out a bundle: the receipt, the manifest, the decision
// block (its encoding), then records (the receipt and repeats left out)
// in ascending order of binary CID. The manifest's proofs follow
// BundleRecords(receipt, records).
func NewBundle(receipt *Record, manifest *BundleManifest, decision []byte, records []*Record) (*Bundle, error) {
	if receipt == nil || receipt.Kind() != KindReceipt {
		return nil, errors.New("bundle: the root must be a receipt")
	}
	mb, err := manifest.Encode()
	if err != nil {
		return nil, fmt.Errorf("bundle: manifest: %w", err)
	}
	ordered := BundleRecords(receipt, records)
	b := &Bundle{Root: receipt.CID(), Blocks: make([]BundleBlock, 0, 2+len(ordered))}
	b.Blocks = append(b.Blocks, BundleBlock{receipt.CID(), receipt.Bytes()}, BundleBlock{RecordCID(mb), mb},
		BundleBlock{RecordCID(decision), decision})
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

// LogTree is a tree of a node's log: its size and root hash.
type LogTree struct {
	Size uint64
	Root tlog.Hash
}

// BundleTrust is what a bundle is checked against: the federation
// file's name, authorities and founding nodes (restricted, if the node
// recognises fewer jurisdictions, as the node restricts them). The
// checkpoint is opened with the receipt issuer's key under its origin
// in the federation (OpenCheckpoint).
type BundleTrust struct {
	Federation    string
	Authorities   map[string]peer.ID
	FoundingNodes map[peer.ID]string
	// Rules caches compiled rule conditions; nil compiles them on each
	// use.
	Rules *RuleEngine
}

// NewBundleTrust is the BundleTrust of a federation file: its name,
// authorities and founding nodes (config.Federation gives them), with a
// rule engine of its own.
func NewBundleTrust(federation string, authorities map[string]peer.ID, foundingNodes map[peer.ID]string) BundleTrust {
	return BundleTrust{Federation: federation, Authorities: authorities, FoundingNodes: foundingNodes, Rules: NewRuleEngine(0)}
}

// BundleStep is the outcome of one step of CheckBundle.
type BundleStep struct {
	ID      string
	OK      bool
	Skipped bool // not checked: an earlier step could not give it its inputs
	Detail  string
}

// BundleReport is what CheckBundle found: every step in order; the
// receipt, manifest and decision block as read (each nil if it did not
// decode); and the decision recomputed from the bundle (nil if it was not
// reached).
type BundleReport struct {
	Steps    []BundleStep
	Receipt  *Record
	Manifest *BundleManifest // which decision of the receipt (Item), the checkpoint, the proofs
	Block    *DecisionBlock  // the bundle's decision as signed
	Decision *Decision       // as recomputed
}

// OK reports whether every step holds.
func (r *BundleReport) OK() bool {
	_, failed := r.FirstFailure()
	return !failed && len(r.Steps) > 0
}

// FirstFailure returns the first step that does not hold.
func (r *BundleReport) FirstFailure() (BundleStep, bool) {
	for _, s := range r.Steps {
		if !s.OK {
			return s, true
		}
	}
	return BundleStep{}, false
}

// Err is nil when the bundle holds, else a *BundleError naming the first
// step that does not.
func (r *BundleReport) Err() error {
	if s, failed := r.FirstFailure(); failed {
		return &BundleError{Step: s}
	}
	if len(r.Steps) == 0 {
		return &BundleError{Step: BundleStep{ID: StepCAR, Detail: "nothing was checked"}}
	}
	return nil
}

// BundleError is a bundle that does not hold, and the first step that
// says so.
type BundleError struct{ Step BundleStep }

func (e *BundleError) Error() string {
	return fmt.Sprintf("the bundle does not hold: %s: %s", e.Step.ID, e.Step.Detail)
}

// CheckBundleCAR reads a bundle's CAR (step bundle.car) and checks it
// (CheckBundle). It never panics, whatever the bytes.
func CheckBundleCAR(car []byte, trust BundleTrust) *BundleReport {
	b, err := ReadBundle(car)
	if err != nil {
		rep := &BundleReport{Steps: []BundleStep{{ID: StepCAR, Detail: strings.TrimPrefix(err.Error(), "bundle: ")}}}
		for _, id := range bundleSteps[1:] {
			rep.Steps = append(rep.Steps, BundleStep{ID: id, Skipped: true, Detail: "not checked: " + StepCAR + " did not hold"})
		}
		return rep
	}
	rep := CheckBundle(b, trust)
	rep.Steps = append([]BundleStep{{ID: StepCAR, OK: true,
		Detail: fmt.Sprintf("a CAR v1 of %d bytes and %d blocks, rooted at %s", len(car), len(b.Blocks), b.Root)}}, rep.Steps...)
	return rep
}

var bundleSteps = []string{
	StepCAR, StepBlocks, StepManifest, StepRecords, StepReceiptIssuer, StepDecisionBlock, StepCheckpoint,
	StepInclusion, StepConsistency, StepEvidenceHeld, StepEvidenceAuthorized, StepDecision,
}

// CheckBundle checks a bundle read by ReadBundle against trust, step by
// step (the steps of Bundle's doc), recomputing every signature, proof,
// authorisation and the decision from the bundle's bytes. It needs
// nothing else and never panics.
func CheckBundle(b *Bundle, trust BundleTrust) *BundleReport {
	if b == nil {
		b = &Bundle{}
	}
	c := &bundleCheck{b: b, trust: trust, rep: &BundleReport{}}
	c.step(StepBlocks, nil, c.blocksStep)
	c.step(StepManifest, nil, c.manifestStep)
	c.step(StepRecords, nil, c.recordsStep)
	c.step(StepReceiptIssuer, c.needReceipt, c.receiptIssuer)
	c.step(StepDecisionBlock, c.needReceiptAndManifest, c.decisionBlock)
	c.step(StepCheckpoint, c.needReceiptAndManifest, c.checkpoint)
	c.step(StepInclusion, c.needTree, c.inclusion)
	c.step(StepConsistency, c.needTree, c.consistency)
	c.step(StepEvidenceHeld, c.needBlock, c.evidenceHeld)
	c.step(StepEvidenceAuthorized, c.needBlock, c.evidenceAuthorized)
	c.step(StepDecision, c.needBlock, c.decision)
	c.rep.Receipt, c.rep.Manifest, c.rep.Block = c.receipt, c.manifest, c.block
	return c.rep
}

// bundleCheck is one run of CheckBundle.
type bundleCheck struct {
	b     *Bundle
	trust BundleTrust
	rep   *BundleReport

	hashOK   []bool          // by block: the CID is a record ID of the bytes
	manifest *BundleManifest // nil until decoded
	receipt  *Record         // nil until parsed
	body     *Receipt
	block    *DecisionBlock // nil until decoded
	records  []*Record      // by block, nil for the manifest and blocks that did not parse
	view     *RecordView
	tree     *LogTree // the checkpoint's, once verified
}

// step runs fn as step id, unless need says what is missing.
func (c *bundleCheck) step(id string, need func() string, fn func() (bool, string)) {
	if need != nil {
		if missing := need(); missing != "" {
			c.rep.Steps = append(c.rep.Steps, BundleStep{ID: id, Skipped: true, Detail: "not checked: " + missing})
			return
		}
	}
	ok, detail := fn()
	c.rep.Steps = append(c.rep.Steps, BundleStep{ID: id, OK: ok, Detail: clipText(detail, 2000)})
}

func (c *bundleCheck) needReceipt() string {
	if c.receipt == nil {
		return "no receipt (" + StepRecords + ")"
	}
	return ""
}

func (c *bundleCheck) needReceiptAndManifest() string {
	if m := c.needReceipt(); m != "" {
		return m
	}
	if c.manifest == nil {
		return "no manifest (" + StepManifest + ")"
	}
	return ""
}

func (c *bundleCheck) needBlock() string {
	if m := c.needReceipt(); m != "" {
		return m
	}
	if c.block == nil {
		return "no decision block (" + StepDecisionBlock + ")"
	}
	return ""
}

func (c *bundleCheck) needTree() string {
	if m := c.needReceiptAndManifest(); m != "" {
		return m
	}
	if c.tree == nil {
		return "no verified checkpoint (" + StepCheckpoint + ")"
	}
	return ""
}

// blockName names block i (0-based) for people: 1-based, with its role.
func blockName(i int) string {
	switch i {
	case 0:
		return "block 1 (the receipt)"
	case 1:
		return "block 2 (the manifest)"
	case 2:
		return "block 3 (the decision)"
	}
	return fmt.Sprintf("block %d", i+1)
}

// bundle.blocks
func (c *bundleCheck) blocksStep() (bool, string) {
	blocks := c.b.Blocks
	c.hashOK = make([]bool, len(blocks))
	var faults []string
	for i, blk := range blocks {
		switch {
		case !IsRecordID(blk.CID):
			faults = append(faults, fmt.Sprintf("%s: %s is not a CIDv1 dag-cbor sha2-256", blockName(i), blk.CID))
		case !RecordCID(blk.Data).Equals(blk.CID):
			faults = append(faults, fmt.Sprintf("%s: its bytes hash to %s, not to its CID %s", blockName(i), RecordCID(blk.Data), blk.CID))
		default:
			c.hashOK[i] = true
		}
	}
	switch {
	case len(blocks) < 3:
		faults = append(faults, fmt.Sprintf("%d blocks; a bundle has at least the receipt, the manifest and the decision", len(blocks)))
	case !blocks[0].CID.Equals(c.b.Root):
		faults = append(faults, fmt.Sprintf("the first block is %s, not the root %s", blocks[0].CID, c.b.Root))
	}
	for i := 4; i < len(blocks); i++ {
		if blocks[i-1].CID.KeyString() >= blocks[i].CID.KeyString() {
			faults = append(faults, fmt.Sprintf("%s is not after %s in CID order", blockName(i), blockName(i-1)))
			break
		}
	}
	for i := 1; i < len(blocks); i++ {
		if blocks[i].CID.Equals(c.b.Root) {
			faults = append(faults, fmt.Sprintf("%s repeats the root", blockName(i)))
		}
	}
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("%d blocks, each the sha2-256 of its bytes: the receipt, the manifest, the decision, %d records in CID order", len(blocks), len(blocks)-3)
}

// joinFaults writes the first few faults, and how many more there are.
func joinFaults(faults []string) string {
	const show = 3
	if len(faults) <= show {
		return strings.Join(faults, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(faults[:show], "; "), len(faults)-show)
}

// bundle.manifest
func (c *bundleCheck) manifestStep() (bool, string) {
	if len(c.b.Blocks) < 2 {
		return false, "there is no second block to be the manifest"
	}
	if !c.hashOK[1] {
		return false, "the manifest block's bytes do not match its CID"
	}
	m, err := DecodeBundleManifest(c.b.Blocks[1].Data)
	if err != nil {
		return false, fmt.Sprintf("block 2 is not a manifest: %v", err)
	}
	if !m.Receipt.Equals(c.b.Root) {
		return false, fmt.Sprintf("the manifest is for receipt %s, not the root %s", m.Receipt, c.b.Root)
	}
	c.manifest = m
	return true, fmt.Sprintf("version %d, for decision %d of receipt %s: a checkpoint note of %d bytes, %d inclusion %s, a consistency proof of %d %s",
		m.V, m.Item, m.Receipt, len(m.Checkpoint), len(m.Proofs), plural(len(m.Proofs), "proof", "proofs"), len(m.Consistency), plural(len(m.Consistency), "hash", "hashes"))
}

// records.signed
func (c *bundleCheck) recordsStep() (bool, string) {
	blocks := c.b.Blocks
	c.records = make([]*Record, len(blocks))
	var faults []string
	parsed := 0
	for i, blk := range blocks {
		if i == 1 || i == 2 {
			continue // the manifest and the decision
		}
		if !c.hashOK[i] {
			faults = append(faults, fmt.Sprintf("%s (%s) cannot be trusted: its bytes do not match its CID", blockName(i), blk.CID))
			continue
		}
		r, err := Parse(blk.Data)
		switch {
		case err != nil:
			faults = append(faults, fmt.Sprintf("%s (%s): %v", blockName(i), blk.CID, err))
		case i == 0 && r.Kind() != KindReceipt:
			faults = append(faults, fmt.Sprintf("the root %s is a %s, not a receipt", r.CID(), r.Kind()))
		case i > 0 && r.Kind() == KindReceipt:
			faults = append(faults, fmt.Sprintf("%s (%s) is a receipt; a bundle holds one, its root", blockName(i), r.CID()))
		default:
			c.records[i] = r
			parsed++
		}
	}
	if len(blocks) == 0 {
		faults = append(faults, "no blocks, so no receipt")
	} else if c.records[0] != nil {
		c.receipt = c.records[0]
		c.body, _ = c.receipt.Receipt()
	}
	c.view = NewRecordView(StaticAnchors{Authorities: c.trust.Authorities, FoundingNodes: c.trust.FoundingNodes}, c.records[min(1, len(c.records)):])
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("%d records (the receipt and %d more), each canonical and signed by its issuer", parsed, parsed-1)
}

// decision.block
func (c *bundleCheck) decisionBlock() (bool, string) {
	item := c.manifest.Item
	if item >= int64(len(c.body.Decisions)) {
		return false, fmt.Sprintf("the manifest names decision %d; the receipt signs %d", item, len(c.body.Decisions))
	}
	want := c.body.Decisions[item]
	if len(c.b.Blocks) < 3 {
		return false, "there is no third block to be the decision"
	}
	blk := c.b.Blocks[2]
	switch {
	case !blk.CID.Equals(want.Cid):
		return false, fmt.Sprintf("block 3 is %s; the receipt's decision %d is %s", blk.CID, item, want)
	case !c.hashOK[2]:
		return false, "the decision block's bytes do not match its CID"
	}
	b, err := DecodeDecisionBlock(blk.Data)
	if err != nil {
		return false, fmt.Sprintf("block 3 is not a decision block: %v", err)
	}
	c.block = b
	return true, fmt.Sprintf("decision %d of %d the receipt signs: %s, %d checks", item, len(c.body.Decisions), strings.ToUpper(b.Verdict), len(b.Checks))
}

// receipt.issuer
func (c *bundleCheck) receiptIssuer() (bool, string) {
	r := c.receipt
	if err := Authorize(r, c.view); err != nil {
		return false, fmt.Sprintf("%s may not issue receipts at %s: %v", r.Issuer(), fmtTime(r.IssuedAt()), err)
	}
	if j, ok := c.trust.FoundingNodes[r.Issuer()]; ok {
		return true, fmt.Sprintf("issued by %s at %s, a founding node of %s", r.Issuer(), fmtTime(r.IssuedAt()), j)
	}
	return true, fmt.Sprintf("issued by %s at %s, which held a live node accreditation then", r.Issuer(), fmtTime(r.IssuedAt()))
}

// log.checkpoint
func (c *bundleCheck) checkpoint() (bool, string) {
	sc, err := OpenCheckpoint(c.manifest.Checkpoint, c.trust.Federation, c.receipt.Issuer())
	if err != nil {
		return false, fmt.Sprintf("the checkpoint is not one of %s: %v", c.receipt.Issuer(), err)
	}
	tree := LogTree{Size: sc.Size, Root: sc.Root}
	if tree.Size > 1<<62 {
		return false, fmt.Sprintf("the checkpoint's size %d is beyond any log", tree.Size)
	}
	c.tree = &tree
	return true, fmt.Sprintf("signed by %s: a tree of size %d, root %s", c.receipt.Issuer(), tree.Size, tree.Root)
}

// log.inclusion
func (c *bundleCheck) inclusion() (bool, string) {
	m, t := c.manifest, c.tree
	recordBlocks := max(len(c.b.Blocks)-2, 1) // every block but the manifest and the decision
	var faults []string
	if len(m.Proofs) != recordBlocks {
		faults = append(faults, fmt.Sprintf("%d proofs for %d records", len(m.Proofs), recordBlocks))
	}
	for k, p := range m.Proofs {
		i := k + 2 // the block the proof is for: the receipt, then blocks 4...
		if k == 0 {
			i = 0
		}
		if i >= len(c.b.Blocks) {
			break
		}
		blk := c.b.Blocks[i]
		if !p.CID.Equals(blk.CID) {
			faults = append(faults, fmt.Sprintf("proof %d is for %s, not for %s, %s", k+1, p.CID, blockName(i), blk.CID))
			continue
		}
		if uint64(p.Index) >= t.Size {
			faults = append(faults, fmt.Sprintf("%s is leaf %d, not in the tree of size %d", blk.CID, p.Index, t.Size))
			continue
		}
		if err := tlog.CheckRecord(toHashes(p.Hashes), int64(t.Size), t.Root, p.Index, tlog.RecordHash(blk.CID.Bytes())); err != nil {
			faults = append(faults, fmt.Sprintf("%s is not leaf %d of the tree of size %d: %v", blk.CID, p.Index, t.Size, err))
		}
	}
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("the receipt (leaf %d) and %d records are in the tree of size %d", m.Proofs[0].Index, recordBlocks-1, t.Size)
}

// log.consistency
func (c *bundleCheck) consistency() (bool, string) {
	m, t, cp := c.manifest, c.tree, c.body.Checkpoint
	var root tlog.Hash
	copy(root[:], cp.Root)
	size := uint64(cp.Size)
	if size > t.Size {
		return false, fmt.Sprintf("the receipt names a tree of size %d, larger than the checkpoint's %d", size, t.Size)
	}
	switch {
	case size == 0:
		if root != (tlog.Hash{}) && root != emptyTreeHash() {
			return false, fmt.Sprintf("the receipt names the empty tree with root %s", root)
		}
		if len(m.Consistency) != 0 {
			return false, "a consistency proof for the empty tree, which needs none"
		}
	default:
		if err := tlog.CheckTree(toHashes(m.Consistency), int64(t.Size), t.Root, int64(size), root); err != nil {
			return false, fmt.Sprintf("the tree of size %d, root %s, the receipt names is not a prefix of the checkpoint's: %v", size, root, err)
		}
	}
	if len(m.Proofs) == 0 || !m.Proofs[0].CID.Equals(c.receipt.CID()) {
		return false, "no inclusion proof for the receipt"
	}
	if idx := uint64(m.Proofs[0].Index); idx < size {
		return false, fmt.Sprintf("the receipt is leaf %d, inside the tree of size %d it names: it cannot have been appended after it", idx, size)
	}
	return true, fmt.Sprintf("the tree of size %d the receipt names is a prefix of the checkpoint's, and the receipt is leaf %d, after it", size, m.Proofs[0].Index)
}

// emptyTreeHash is tlog's hash of the empty tree.
func emptyTreeHash() tlog.Hash {
	h, _ := tlog.TreeHash(0, nil)
	return h
}

// evidence.held
func (c *bundleCheck) evidenceHeld() (bool, string) {
	var missing []string
	for _, l := range c.block.Evidence {
		if _, ok := c.view.records[l.Cid]; !ok {
			missing = append(missing, l.String())
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("%d of the %d evidence records are not in the bundle: %s",
			len(missing), len(c.block.Evidence), joinFaults(missing))
	}
	return true, fmt.Sprintf("all %d evidence records are in the bundle", len(c.block.Evidence))
}

// evidence.authorized
func (c *bundleCheck) evidenceAuthorized() (bool, string) {
	var faults []string
	n := 0
	for _, l := range c.block.Evidence {
		r, ok := c.view.records[l.Cid]
		if !ok {
			continue // evidence.held says so
		}
		n++
		if err := Authorize(r, c.view); err != nil {
			faults = append(faults, fmt.Sprintf("%s %s by %s: %v", r.Kind(), r.CID(), r.Issuer(), err))
		}
	}
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("each of the %d evidence records in the bundle was issued by a key entitled to issue it", n)
}

// decision.recomputed
func (c *bundleCheck) decision() (bool, string) {
	req := c.block.Request
	d, err := Decide(&req, c.view, c.trust.Rules)
	if err != nil {
		return false, fmt.Sprintf("the decision cannot be recomputed: %v", err)
	}
	c.rep.Decision = d
	if diff := d.Diff(c.block); diff != "" {
		return false, diff
	}
	return true, fmt.Sprintf("the bundle's records give %s, as the receipt says, with the same %d checks and %d evidence records",
		strings.ToUpper(d.Verdict), len(d.Checks), len(d.Evidence))
}

// Diff returns "" when the decision is exactly what the receipt r signs
// (verdict, checks — id, ok, reason, evidence; not the detail — and evidence), and
// otherwise the first difference, in words.
func (d *Decision) Diff(r *DecisionBlock) string {
	if d.Verdict != r.Verdict {
		return fmt.Sprintf("the bundle's records give %s, the receipt says %s%s", strings.ToUpper(d.Verdict), strings.ToUpper(r.Verdict), firstCheckDiff(d.Checks, r.Checks))
	}
	if s := firstCheckDiff(d.Checks, r.Checks); s != "" {
		return "the verdict agrees, but" + s
	}
	if !slices.EqualFunc(d.Evidence, r.Evidence, func(a, b Link) bool { return a.Equals(b.Cid) }) {
		return fmt.Sprintf("the checks agree, but the evidence differs: %d records recomputed, %d in the receipt", len(d.Evidence), len(r.Evidence))
	}
	return ""
}

// firstCheckDiff describes the first check that differs, after "; ".
// Checks are compared by id, ok, reason and evidence; the detail is
// English for people, which another implementation need not reproduce.
func firstCheckDiff(got, want []Check) string {
	if len(got) != len(want) {
		return fmt.Sprintf("; %d checks recomputed, %d in the receipt", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.ID == w.ID && g.OK == w.OK && g.Reason == w.Reason && linkPtrEqual(g.Evidence, w.Evidence) {
			continue
		}
		if g.ID != w.ID {
			return fmt.Sprintf("; check %d is %s, the receipt's is %s", i+1, g.ID, w.ID)
		}
		if g.OK == w.OK && g.Reason == w.Reason {
			return fmt.Sprintf("; check %s: recomputed with evidence %s, the receipt names %s", g.ID, linkString(g.Evidence), linkString(w.Evidence))
		}
		return fmt.Sprintf("; check %s: recomputed %s (%s), the receipt says %s (%s)",
			g.ID, outcome(g), clipText(g.Detail, 300), outcome(w), clipText(w.Detail, 300))
	}
	return ""
}

// outcome is a check's pass, or FAIL and its reason.
func outcome(c Check) string {
	if c.OK {
		return "pass"
	}
	if c.Reason == "" {
		return "FAIL"
	}
	return "FAIL " + c.Reason
}

func linkString(l *Link) string {
	if l == nil {
		return "none"
	}
	return l.String()
}

func linkPtrEqual(a, b *Link) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equals(b.Cid)
}
