package protocol

import (
	"fmt"
	"strings"
)

// ancestors runs lineage.ancestor for each ancestor the bundle carries,
// parent first, following the requests' parents: each is reported under
// its depth. An ancestor the bundle does not carry is not reported: the
// decision that names it cannot be recomputed without it, and its own
// step says so.
func (c *bundleCheck) ancestors() {
	if c.block == nil || c.manifest == nil || c.view == nil {
		return // the steps before say why
	}
	ref := c.block.Request.Parent
	depth := 1
	for ; ref != nil && depth <= len(c.lineage); depth++ {
		ok, detail := c.ancestor(depth, ref)
		c.rep.Steps = append(c.rep.Steps, BundleStep{ID: StepAncestor, OK: ok, Depth: depth, Detail: clipText(detail, 2000)})
		ref = c.lineage[depth-1].Request.Parent
	}
	if extra := len(c.lineage) - (depth - 1); extra > 0 {
		c.rep.Steps = append(c.rep.Steps, BundleStep{ID: StepAncestor, Depth: depth,
			Detail: fmt.Sprintf("the manifest lists %d ancestors' decisions, but the lineage ends at depth %d", len(c.lineage), depth-1)})
	}
}

// ancestor checks the ancestor at depth, named by ref, against the
// decision block the manifest lists for it.
func (c *bundleCheck) ancestor(depth int, ref *DecisionRef) (bool, string) {
	blk, blkID := c.lineage[depth-1], c.manifest.Lineage[depth-1].Cid
	head := fmt.Sprintf("depth %d, decision %d of receipt %s", depth, ref.Item, ref.Receipt)
	rec, ok := c.view.records[ref.Receipt.Cid]
	if !ok {
		return false, head + ": the receipt is not in the bundle"
	}
	body, ok := rec.Receipt()
	if !ok {
		return false, fmt.Sprintf("%s: %s is a %s, not a receipt", head, ref.Receipt, rec.Kind())
	}
	if ref.Item >= int64(len(body.Decisions)) {
		return false, fmt.Sprintf("%s: the receipt signs %d %s", head, len(body.Decisions), plural(len(body.Decisions), "decision", "decisions"))
	}
	if got := body.Decisions[ref.Item].Cid; !got.Equals(blkID) {
		return false, fmt.Sprintf("%s: the receipt's decision is %s, the manifest lists %s", head, got, blkID)
	}
	head += " by node " + rec.Issuer().String()
	v := c.viewUntil(rec.IssuedAt())
	if err := Authorize(rec, v); err != nil {
		return false, fmt.Sprintf("%s: it may not issue receipts at %s: %v", head, fmtTime(rec.IssuedAt()), err)
	}
	if missing := c.missingEvidence(v, blk); len(missing) > 0 {
		return false, fmt.Sprintf("%s: %d of its %d evidence records are not in the bundle (issued by then): %s",
			head, len(missing), len(blk.Evidence), joinFaults(missing))
	}
	if faults, _ := unauthorizedEvidence(v, blk); len(faults) > 0 {
		return false, fmt.Sprintf("%s: %s", head, joinFaults(faults))
	}
	d, diff, err := c.recompute(v, blk)
	if err != nil {
		return false, fmt.Sprintf("%s: it cannot be recomputed: %v", head, err)
	}
	if diff != "" {
		return false, fmt.Sprintf("%s: %s", head, diff)
	}
	r := &blk.Request
	return true, fmt.Sprintf("%s: tier %d from %s to %s, %s recomputed from the records issued by %s, with the same %d checks and %d evidence records",
		head, r.Tier, r.From, r.To, strings.ToUpper(d.Verdict), fmtTime(rec.IssuedAt()), len(d.Checks), len(d.Evidence))
}

// viewUntil is a view of the bundle's records issued at or before t (the
// records an ancestor's node could have known when it signed) and of its
// decision blocks.
func (c *bundleCheck) viewUntil(t int64) *RecordView {
	var recs []*Record
	for _, r := range c.records[min(1, len(c.records)):] {
		if r != nil && r.IssuedAt() <= t {
			recs = append(recs, r)
		}
	}
	v := NewRecordView(c.trust.anchors(), recs)
	for k, blk := range c.lineage {
		v.AddBlock(c.manifest.Lineage[k].Cid, blk)
	}
	return v
}
