package api

import (
	"net/http"
	"time"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// LineageNode is one decision of a consent's lineage (GET
// /v1/consents/{cid}/lineage): decision Item of Receipt, and the decisions
// that name it as their parent.
type LineageNode struct {
	Receipt   string `json:"receipt"`
	Item      int    `json:"item"`
	Tier      int64  `json:"tier"`
	Verdict   string `json:"verdict"`
	From      string `json:"from"`
	To        string `json:"to"`
	Sender    string `json:"sender"`
	Recipient string `json:"recipient"`
	At        string `json:"at"` // the decision time, RFC 3339
	// NotifiedAt is when the recipient was first told, on its notices
	// stream, that the consent was revoked or superseded (RFC 3339).
	NotifiedAt string         `json:"notified_at,omitempty"`
	Children   []*LineageNode `json:"children,omitempty"`
}

// Lineage is the answer of GET /v1/consents/{cid}/lineage: the decisions
// this node holds that derive from the consent, as a tree whose roots are
// the decisions without a parent (tier 1) — and those whose parent the
// caller may not read or the node does not hold.
type Lineage struct {
	Consent string         `json:"consent"`
	Roots   []*LineageNode `json:"roots"`
}

// maxLineage bounds the decisions one lineage answer holds.
const maxLineage = 10000

func (a *API) handleLineage(w http.ResponseWriter, r *http.Request) {
	c, err := cidParam(r.PathValue("cid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if _, err := queryParams(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	rec, err := a.visibleRecord(r, c)
	if err == nil && rec.Kind() != protocol.KindConsent {
		err = notVisible("consent " + c.String())
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	caller := callerOf(r)
	type key struct {
		receipt string
		item    int64
	}
	nodes := map[key]*LineageNode{}
	var order []key
	parents := map[key]*key{}
	q := store.DecisionQuery{Consent: c, Limit: store.MaxListLimit}
	for len(order) < maxLineage {
		entries, next, err := a.cfg.Store.Decisions(q)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for _, e := range entries {
			blk, err := a.cfg.Blocks.DecisionBlock(e.Block)
			if err != nil {
				a.writeError(w, r, err)
				return
			}
			if !protocol.MayReadDecision(caller, blk) {
				continue
			}
			req := &blk.Request
			k := key{e.Receipt.String(), int64(e.Item)}
			nodes[k] = &LineageNode{Receipt: k.receipt, Item: e.Item, Tier: req.Tier, Verdict: blk.Verdict, From: req.From, To: req.To,
				Sender: req.Sender, Recipient: req.Recipient, At: time.UnixMilli(req.At).UTC().Format(time.RFC3339Nano)}
			if at, ok, err := a.cfg.Store.NotifiedAt(e.Receipt, e.Item); err == nil && ok {
				nodes[k].NotifiedAt = time.UnixMilli(at).UTC().Format(time.RFC3339Nano)
			}
			order = append(order, k)
			if p := req.Parent; p != nil {
				parents[k] = &key{p.Receipt.String(), p.Item}
			}
		}
		if next == 0 {
			break
		}
		q.After = next
	}
	out := Lineage{Consent: c.String(), Roots: []*LineageNode{}}
	for _, k := range order {
		if p := parents[k]; p != nil && nodes[*p] != nil {
			nodes[*p].Children = append(nodes[*p].Children, nodes[k])
			continue
		}
		out.Roots = append(out.Roots, nodes[k])
	}
	writeJSON(w, http.StatusOK, out)
}
