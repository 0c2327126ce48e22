package protocol

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"
)

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

// anchors are the trust's authorities and founding nodes.
func (t BundleTrust) anchors() StaticAnchors {
	return StaticAnchors{Authorities: t.Authorities, FoundingNodes: t.FoundingNodes}
}

// BundleStep is the outcome of one step of CheckBundle.
type BundleStep struct {
	ID      string
	OK      bool
	Skipped bool // not checked: an earlier step could not give it its inputs
	Detail  string
	// Depth is an ancestor's (lineage.ancestor): 1 the parent, 2 the
	// grandparent...; 0 for the other steps.
	Depth int
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
	// Withheld is the evidence the bundle withholds from the caller it
	// was made for (its manifest's), and WithheldChecks the checks of the
	// decision or an ancestor that it leaves neither confirmed nor refuted
	// (incident.clear): the steps hold for everything else.
	Withheld       []BundleWithheld
	WithheldChecks []string
}

// Complete reports whether the bundle withholds nothing: when it holds
// (OK), every check was confirmed.
func (r *BundleReport) Complete() bool { return len(r.Withheld) == 0 }

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
	c.ancestors()
	c.rep.Receipt, c.rep.Manifest, c.rep.Block = c.receipt, c.manifest, c.block
	if c.manifest != nil {
		c.rep.Withheld = c.manifest.Withheld
	}
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
	block    *DecisionBlock   // nil until decoded
	lineage  []*DecisionBlock // the ancestors', as the manifest lists them, once decoded
	records  []*Record        // by block, nil for the blocks that are not records and those that did not parse
	view     *RecordView
	tree     *LogTree         // the checkpoint's, once verified
	withheld map[cid.Cid]bool // the manifest's
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
	for i := 1; i < len(blocks); i++ {
		if blocks[i].CID.Equals(c.b.Root) {
			faults = append(faults, fmt.Sprintf("%s repeats the root", blockName(i)))
		}
	}
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("%d blocks, each the sha2-256 of its bytes, the receipt first", len(blocks))
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
	blocks, n := c.b.Blocks, len(m.Lineage)
	if len(blocks) < 3+n {
		return false, fmt.Sprintf("the manifest lists %d ancestors' decisions, and the bundle has %d blocks", n, len(blocks))
	}
	for k, l := range m.Lineage {
		if !blocks[3+k].CID.Equals(l.Cid) {
			return false, fmt.Sprintf("%s is %s, not the ancestor's decision %s the manifest lists %d", blockName(3+k), blocks[3+k].CID, l, k+1)
		}
	}
	for i := 4 + n; i < len(blocks); i++ {
		if blocks[i-1].CID.KeyString() >= blocks[i].CID.KeyString() {
			return false, fmt.Sprintf("%s is not after %s in CID order", blockName(i), blockName(i-1))
		}
	}
	c.manifest = m
	c.withheld = map[cid.Cid]bool{}
	for _, w := range m.Withheld {
		c.withheld[w.CID.Cid] = true
	}
	return true, fmt.Sprintf("version %d, for decision %d of receipt %s: %d %s' decisions, %d records in CID order; a checkpoint note of %d bytes, %d inclusion %s, a consistency proof of %d %s",
		m.V, m.Item, m.Receipt, n, plural(n, "ancestor", "ancestors"), len(blocks)-3-n, len(m.Checkpoint),
		len(m.Proofs), plural(len(m.Proofs), "proof", "proofs"), len(m.Consistency), plural(len(m.Consistency), "hash", "hashes"))
}

// firstRecord is the index of the first block after the decision blocks:
// 3 plus the ancestors the manifest lists (3 without a manifest).
func (c *bundleCheck) firstRecord() int {
	if c.manifest == nil {
		return 3
	}
	return 3 + len(c.manifest.Lineage)
}

// records.signed
func (c *bundleCheck) recordsStep() (bool, string) {
	blocks := c.b.Blocks
	c.records = make([]*Record, len(blocks))
	var faults []string
	parsed := 0
	for i, blk := range blocks {
		if i > 0 && i < c.firstRecord() {
			continue // the manifest and the decisions
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
	c.view = NewRecordView(c.trust.anchors(), c.records[min(1, len(c.records)):])
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
	var lineage []*DecisionBlock
	for k := range c.manifest.Lineage {
		i := 3 + k
		if !c.hashOK[i] {
			return false, fmt.Sprintf("%s, ancestor %d's decision, does not match its CID", blockName(i), k+1)
		}
		a, err := DecodeDecisionBlock(c.b.Blocks[i].Data)
		if err != nil {
			return false, fmt.Sprintf("%s is not a decision block: %v", blockName(i), err)
		}
		lineage = append(lineage, a)
		c.view.AddBlock(c.b.Blocks[i].CID, a)
	}
	c.block, c.lineage = b, lineage
	detail := fmt.Sprintf("decision %d of %d the receipt signs: %s, %d checks", item, len(c.body.Decisions), strings.ToUpper(b.Verdict), len(b.Checks))
	if len(lineage) > 0 {
		detail += fmt.Sprintf("; %d %s' decisions", len(lineage), plural(len(lineage), "ancestor", "ancestors"))
	}
	return true, detail
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
	first := c.firstRecord()
	recordBlocks := max(len(c.b.Blocks)-first+1, 1) // the receipt and the blocks from first on
	var faults []string
	if len(m.Proofs) != recordBlocks {
		faults = append(faults, fmt.Sprintf("%d proofs for %d records", len(m.Proofs), recordBlocks))
	}
	for k, p := range m.Proofs {
		i := k + first - 1 // the block the proof is for: the receipt, then the records
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
	if missing := c.missingEvidence(c.view, c.block); len(missing) > 0 {
		return false, fmt.Sprintf("%d of the %d evidence records are not in the bundle: %s",
			len(missing), len(c.block.Evidence), joinFaults(missing))
	}
	for _, w := range c.manifest.Withheld {
		if !slices.ContainsFunc(c.block.Evidence, func(l Link) bool { return l.Equals(w.CID.Cid) }) && !c.ancestorEvidence(w.CID.Cid) {
			return false, fmt.Sprintf("the manifest withholds %s, which is no evidence of the decision or its ancestors", w.CID)
		}
	}
	if n := c.withheldOf(c.block); n > 0 {
		return true, fmt.Sprintf("%d of the %d evidence records are in the bundle; %d %s withheld from the caller it was made for",
			len(c.block.Evidence)-n, len(c.block.Evidence), n, plural(n, "incident is", "incidents are"))
	}
	return true, fmt.Sprintf("all %d evidence records are in the bundle", len(c.block.Evidence))
}

// ancestorEvidence reports whether an ancestor's decision names c as
// evidence.
func (c *bundleCheck) ancestorEvidence(id cid.Cid) bool {
	for _, blk := range c.lineage {
		if slices.ContainsFunc(blk.Evidence, func(l Link) bool { return l.Equals(id) }) {
			return true
		}
	}
	return false
}

// withheldOf counts blk's evidence that the manifest withholds.
func (c *bundleCheck) withheldOf(blk *DecisionBlock) int {
	n := 0
	for _, l := range blk.Evidence {
		if c.withheld[l.Cid] {
			n++
		}
	}
	return n
}

// evidence.authorized
func (c *bundleCheck) evidenceAuthorized() (bool, string) {
	faults, n := unauthorizedEvidence(c.view, c.block)
	if len(faults) > 0 {
		return false, joinFaults(faults)
	}
	return true, fmt.Sprintf("each of the %d evidence records in the bundle was issued by a key entitled to issue it", n)
}

// decision.recomputed
func (c *bundleCheck) decision() (bool, string) {
	d, diff, err := c.recompute(c.view, c.block)
	if err != nil {
		return false, fmt.Sprintf("the decision cannot be recomputed: %v", err)
	}
	c.rep.Decision = d
	if diff != "" {
		return false, diff
	}
	if c.withheldOf(c.block) > 0 {
		return true, fmt.Sprintf("the bundle's records give the receipt's %s check for check but %s, whose evidence is withheld",
			strings.ToUpper(c.block.Verdict), CheckIncidentClear)
	}
	return true, fmt.Sprintf("the bundle's records give %s, as the receipt says, with the same %d checks and %d evidence records",
		strings.ToUpper(d.Verdict), len(d.Checks), len(d.Evidence))
}

// missingEvidence lists the evidence of blk that v does not hold and the
// manifest does not withhold.
func (c *bundleCheck) missingEvidence(v *RecordView, blk *DecisionBlock) []string {
	var missing []string
	for _, l := range blk.Evidence {
		if _, ok := v.records[l.Cid]; !ok && !c.withheld[l.Cid] {
			missing = append(missing, l.String())
		}
	}
	return missing
}

// recompute decides blk's request over v and says how the outcome
// differs from blk ("" when it does not). When the bundle withholds some
// of blk's evidence, incident.clear is neither confirmed nor refuted: it
// and the verdict it alone may explain are left out of the comparison,
// and the evidence recomputed must be some of blk's.
func (c *bundleCheck) recompute(v *RecordView, blk *DecisionBlock) (*Decision, string, error) {
	req := blk.Request
	d, err := Decide(&req, v, c.trust.Rules)
	if err != nil || c.withheldOf(blk) == 0 {
		if err != nil {
			return nil, "", err
		}
		return d, d.Diff(blk), nil
	}
	if !slices.Contains(c.rep.WithheldChecks, CheckIncidentClear) {
		c.rep.WithheldChecks = append(c.rep.WithheldChecks, CheckIncidentClear)
	}
	others := func(cs []Check) []Check {
		return slices.DeleteFunc(slices.Clone(cs), func(c Check) bool { return c.ID == CheckIncidentClear })
	}
	if s := firstCheckDiff(others(d.Checks), others(blk.Checks)); s != "" {
		return d, "with its withheld evidence left out, the checks differ" + s, nil
	}
	explained := slices.ContainsFunc(blk.Checks, func(c Check) bool { return c.ID == CheckIncidentClear && !c.OK })
	if d.Verdict != blk.Verdict && !explained {
		return d, fmt.Sprintf("the bundle's records give %s, the receipt says %s", strings.ToUpper(d.Verdict), strings.ToUpper(blk.Verdict)), nil
	}
	for _, l := range d.Evidence {
		if !slices.ContainsFunc(blk.Evidence, func(e Link) bool { return e.Equals(l.Cid) }) {
			return d, fmt.Sprintf("the checks agree, but %s is evidence recomputed that the receipt does not name", l), nil
		}
	}
	return d, "", nil
}

// unauthorizedEvidence says which held evidence records of blk their
// issuer could not issue, and how many were held.
func unauthorizedEvidence(v *RecordView, blk *DecisionBlock) (faults []string, held int) {
	for _, l := range blk.Evidence {
		r, ok := v.records[l.Cid]
		if !ok {
			continue // missingEvidence says so
		}
		held++
		if err := Authorize(r, v); err != nil {
			faults = append(faults, fmt.Sprintf("%s %s by %s: %v", r.Kind(), r.CID(), r.Issuer(), err))
		}
	}
	return faults, held
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
