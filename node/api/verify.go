package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// CheckView is one check of a verdict as the API shows it.
type CheckView struct {
	ID       string `json:"id"`
	OK       bool   `json:"ok"`
	Reason   string `json:"reason,omitempty"`
	Evidence string `json:"evidence,omitempty"`
	Detail   string `json:"detail"`
}

// VerdictView is the answer of POST /v1/transfers/verify: the verdict,
// its checks, and the receipt that signs it as decision Item; an answer
// with no receipt says why in Unsigned (service.UnsignedHeld or
// UnsignedTime).
type VerdictView struct {
	Verdict  string      `json:"verdict"`
	Checks   []CheckView `json:"checks"`
	Receipt  string      `json:"receipt,omitempty"`
	Item     int         `json:"item"`
	Unsigned string      `json:"unsigned,omitempty"`
}

// ResultView is one result of a verify-batch: decision Item of the
// batch's receipt.
type ResultView struct {
	Item    int         `json:"item"`
	Verdict string      `json:"verdict"`
	Checks  []CheckView `json:"checks"`
}

// BatchView is the answer of POST /v1/transfers/verify-batch: one
// receipt for the whole batch, result i its decision i.
type BatchView struct {
	Receipt  string       `json:"receipt,omitempty"`
	Unsigned string       `json:"unsigned,omitempty"`
	Results  []ResultView `json:"results"`
}

func verdictView(v *service.Verdict) VerdictView {
	return VerdictView{Verdict: v.Decision.Verdict, Checks: checkViews(v.Decision.Checks), Receipt: receiptOf(v), Item: v.Item, Unsigned: v.Unsigned}
}

// receiptOf is the CID of the receipt that signs v, "" if none does.
func receiptOf(v *service.Verdict) string {
	if v.Receipt == nil {
		return ""
	}
	return v.Receipt.CID().String()
}

func checkViews(checks []protocol.Check) []CheckView {
	out := make([]CheckView, 0, len(checks))
	for _, c := range checks {
		cv := CheckView{ID: c.ID, OK: c.OK, Reason: c.Reason, Detail: c.Detail}
		if c.Evidence != nil {
			cv.Evidence = c.Evidence.String()
		}
		out = append(out, cv)
	}
	return out
}

// maxVerifyBody bounds a verify request; maxBatchBody a batch.
const maxVerifyBody = 64 << 10

func (a *API) handleVerify(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, MediaJSON, maxVerifyBody)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	req, err := protocol.ParseTransferRequestJSON(body)
	if err != nil {
		a.writeError(w, r, requestError(err, ""))
		return
	}
	if err := mayVerify(r, req, ""); err != nil {
		a.writeError(w, r, err)
		return
	}
	v, err := a.cfg.Verifier.Verify(r.Context(), *req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, verdictView(v))
}

func (a *API) handleVerifyBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, MediaJSON, a.cfg.Limits.MaxBatchBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	reqs, err := parseBatch(body, a.cfg.Limits.MaxBatch)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	for i := range reqs {
		if err := mayVerify(r, &reqs[i], fmt.Sprintf("requests[%d].", i)); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	vs, err := a.cfg.Verifier.VerifyBatch(r.Context(), reqs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := BatchView{Results: make([]ResultView, len(vs))}
	for i, v := range vs {
		out.Receipt, out.Unsigned = receiptOf(v), v.Unsigned
		out.Results[i] = ResultView{Item: v.Item, Verdict: v.Decision.Verdict, Checks: checkViews(v.Decision.Checks)}
	}
	writeJSON(w, http.StatusOK, out)
}

// parseBatch parses a verify-batch body, {"requests": [...]}, of at most
// max requests.
func parseBatch(body []byte, max int) ([]protocol.TransferRequest, error) {
	var in struct {
		Requests *[]json.RawMessage `json:"requests"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		return nil, badRequest("body: want {\"requests\": [transfer requests]}")
	}
	if in.Requests == nil {
		return nil, badRequest("requests: missing field; want {\"requests\": [transfer requests]}")
	}
	if len(*in.Requests) == 0 {
		return nil, badRequest("requests: empty")
	}
	if len(*in.Requests) > max {
		return nil, &protocol.Error{Code: protocol.CodeTooLarge, Field: "requests", Msg: fmt.Sprintf("%d requests; at most %d in one batch", len(*in.Requests), max)}
	}
	reqs := make([]protocol.TransferRequest, len(*in.Requests))
	for i, raw := range *in.Requests {
		req, err := protocol.ParseTransferRequestJSON(raw)
		if err != nil {
			return nil, requestError(err, fmt.Sprintf("requests[%d]", i))
		}
		reqs[i] = *req
	}
	return reqs, nil
}

// mayVerify refuses a request whose sender is not its caller (unless the
// operator asks); field prefixes the field's name in the message.
func mayVerify(r *http.Request, req *protocol.TransferRequest, field string) error {
	if c := callerOf(r); !protocol.MayVerify(c, req.Sender) {
		return forbidden("%ssender: a controller asks only for transfers it sends (sender %s is not the caller %s)", field, req.Sender, c.Peer)
	}
	return nil
}

// requestError is a transfer request that does not parse, as the API
// answers it: bad_request, a JSON body not what the endpoint takes
// (DESIGN.md §8; malformed and invalid_body are for records), naming the
// field, prefixed with where the request sits in the body; bad_cid and
// too_large stay what they are.
func requestError(err error, prefix string) error {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return err
	}
	field := pe.Field
	if prefix != "" {
		field = strings.TrimSuffix(prefix+"."+field, ".")
	}
	if pe.Code == protocol.CodeTooLarge || pe.Code == protocol.CodeBadCID {
		e := *pe
		e.Field = field
		return &e
	}
	if field == "" {
		return badRequest("%s", pe.Msg)
	}
	return badRequest("%s: %s", field, pe.Msg)
}

// handleReceiptBundle serves GET /v1/receipts/{cid}/bundle: the bundle
// of decision ?item=N (default 0) of a receipt this node issued, as a CAR. A CID that does not parse is
// 400 bad_request; one the node does not hold, or that is not a receipt
// of this node, is 404 not_found.
func (a *API) handleReceiptBundle(w http.ResponseWriter, r *http.Request) {
	c, err := cidParam(r.PathValue("cid"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	q, err := queryParams(r, "item")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	item := 0
	if s := q.Get("item"); s != "" {
		if item, err = strconv.Atoi(s); err != nil || item < 0 {
			a.writeError(w, r, badRequest("item: %q is not a decision's index (an integer from 0)", s))
			return
		}
	}
	if err := a.mayReadDecision(r, c, item); err != nil {
		a.writeError(w, r, err)
		return
	}
	b, err := a.cfg.Verifier.BundleFor(c, item, func(rec *protocol.Record) bool { return a.mayRead(r, rec) })
	if errors.Is(err, store.ErrNotFound) {
		err = &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: fmt.Sprintf("receipt %s is not held by this node", c)}
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	car, err := b.MarshalCAR()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", MediaCAR)
	h.Set("Content-Length", strconv.Itoa(len(car)))
	h.Set("Content-Disposition", `attachment; filename="`+c.String()+`.car"`)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache") // a later checkpoint makes another bundle
	w.Write(car)
}

// mayReadDecision answers not_found, as for a receipt not held, unless
// r's caller may read decision item of receipt c (an item out of range
// is left to the bundle's own answer).
func (a *API) mayReadDecision(r *http.Request, c cid.Cid, item int) error {
	caller := callerOf(r)
	if caller.Operator {
		return nil
	}
	hidden := notVisible("receipt " + c.String())
	rec, err := a.cfg.Store.Get(c)
	if err != nil {
		return hidden
	}
	body, ok := rec.Receipt()
	if !ok {
		return hidden
	}
	if item >= len(body.Decisions) {
		return nil
	}
	blk, err := a.cfg.Blocks.DecisionBlock(body.Decisions[item].Cid)
	if err != nil || !protocol.MayReadDecision(caller, blk) {
		return hidden
	}
	return nil
}
