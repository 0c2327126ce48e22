package api

import (
	"encoding/json"
	"net/http"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// ReceiptEntry is one decision of the register (GET /v1/receipts):
// decision Item of Receipt, issued by Issuer at IssuedAt (Unix ms, as the
// receipt holds it), on Request, with its Verdict.
type ReceiptEntry struct {
	Receipt  string          `json:"receipt"`
	Item     int             `json:"item"`
	Issuer   string          `json:"issuer"`
	IssuedAt int64           `json:"issued_at"`
	Request  json.RawMessage `json:"request"`
	Verdict  string          `json:"verdict"`
}

// ReceiptPage is the answer of GET /v1/receipts.
type ReceiptPage struct {
	Receipts []ReceiptEntry `json:"receipts"`
	Next     string         `json:"next"`
}

// handleListReceipts serves GET /v1/receipts: the decisions of the
// receipts this node holds (issued or received) that match the filters
// and that the caller may read (protocol.MayReadDecision), in acceptance
// order, a page as writePage bounds it.
func (a *API) handleListReceipts(w http.ResponseWriter, r *http.Request) {
	q, err := parseReceiptQuery(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	caller := callerOf(r)
	read := func(after uint64, limit int) ([]store.DecisionEntry, uint64, error) {
		q.After, q.Limit = after, limit
		return a.cfg.Store.Decisions(q)
	}
	writePage(a, w, r, "receipts", q.After, q.Limit, read, store.DecisionCursor,
		func(e store.DecisionEntry) (any, bool, error) {
			rec, blk, err := a.decisionOf(e)
			if err != nil || !protocol.MayReadDecision(caller, blk) {
				return nil, false, err
			}
			req, err := blk.Request.JSON()
			return ReceiptEntry{Receipt: e.Receipt.String(), Item: e.Item, Issuer: rec.Issuer().String(),
				IssuedAt: rec.IssuedAt(), Request: req, Verdict: blk.Verdict}, true, err
		})
}

// decisionOf reads a register entry's receipt and decision block.
func (a *API) decisionOf(e store.DecisionEntry) (*protocol.Record, *protocol.DecisionBlock, error) {
	rec, err := a.cfg.Store.Get(e.Receipt)
	if err != nil {
		return nil, nil, err
	}
	blk, err := a.cfg.Blocks.DecisionBlock(e.Block)
	return rec, blk, err
}

func parseReceiptQuery(r *http.Request) (store.DecisionQuery, error) {
	var q store.DecisionQuery
	v, err := queryParams(r, "consent", "from", "to", "sender", "recipient", "after", "limit")
	if err != nil {
		return q, err
	}
	if s := v.Get("consent"); s != "" {
		c, err := cidField("consent", s)
		if err != nil {
			return q, err
		}
		q.Consent = c
	}
	for _, f := range []struct {
		key string
		to  *string
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(f.key); s != "" {
			if !protocol.ValidJurisdiction(s) {
				return q, badRequest("%s: %q is not an upper-case alpha-2 code", f.key, s)
			}
			*f.to = s
		}
	}
	for _, f := range []struct {
		key string
		to  *string
	}{{"sender", &q.Sender}, {"recipient", &q.Recipient}} {
		if s := v.Get(f.key); s != "" {
			id, err := peer.Decode(s)
			if err != nil {
				return q, badRequest("%s: not a peer ID: %v", f.key, err)
			}
			*f.to = id.String()
		}
	}
	q.After, q.Limit, err = pageParams(v)
	return q, err
}
