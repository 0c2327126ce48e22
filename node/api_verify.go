package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/entente-net/entente/protocol"
)

// CheckView is one check of a verdict as the API shows it.
type CheckView struct {
	ID       string `json:"id"`
	OK       bool   `json:"ok"`
	Evidence string `json:"evidence,omitempty"`
	Detail   string `json:"detail"`
}

// VerdictView is the answer of POST /v1/transfers/verify.
type VerdictView struct {
	Verdict string      `json:"verdict"`
	Checks  []CheckView `json:"checks"`
	Receipt string      `json:"receipt"`
}

func verdictView(v *Verdict) VerdictView {
	out := VerdictView{Verdict: v.Decision.Verdict, Receipt: v.Receipt.CID().String(), Checks: make([]CheckView, 0, len(v.Decision.Checks))}
	for _, c := range v.Decision.Checks {
		cv := CheckView{ID: c.ID, OK: c.OK, Detail: c.Detail}
		if c.Evidence != nil {
			cv.Evidence = c.Evidence.String()
		}
		out.Checks = append(out.Checks, cv)
	}
	return out
}

// maxVerifyBody bounds a verify request; maxBatchBody a batch.
const maxVerifyBody = 64 << 10

func (n *Node) handleVerify(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, maxVerifyBody)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	req, err := protocol.ParseTransferRequestJSON(body)
	if err != nil {
		n.writeError(w, r, requestError(err, ""))
		return
	}
	v, err := n.Verify(r.Context(), *req)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, verdictView(v))
}

func (n *Node) handleVerifyBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, n.cfg.MaxBatchBytes)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	var in struct {
		Requests []json.RawMessage `json:"requests"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || dec.More() {
		n.writeError(w, r, badRequest("body: want {\"requests\": [transfer requests]}"))
		return
	}
	if len(in.Requests) == 0 {
		n.writeError(w, r, badRequest("requests: empty"))
		return
	}
	if len(in.Requests) > n.cfg.MaxBatch {
		n.writeError(w, r, &protocol.Error{Code: protocol.CodeTooLarge, Field: "requests", Msg: fmt.Sprintf("%d requests; at most %d in one batch", len(in.Requests), n.cfg.MaxBatch)})
		return
	}
	reqs := make([]protocol.TransferRequest, len(in.Requests))
	for i, raw := range in.Requests {
		req, err := protocol.ParseTransferRequestJSON(raw)
		if err != nil {
			n.writeError(w, r, requestError(err, fmt.Sprintf("requests[%d]", i)))
			return
		}
		reqs[i] = *req
	}
	vs, err := n.VerifyBatch(r.Context(), reqs)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := struct {
		Results []VerdictView `json:"results"`
	}{Results: make([]VerdictView, len(vs))}
	for i, v := range vs {
		out.Results[i] = verdictView(v)
	}
	writeJSON(w, http.StatusOK, out)
}

// requestError prefixes a transfer request error's field with where the
// request sits in the body.
func requestError(err error, prefix string) error {
	var pe *protocol.Error
	if prefix != "" && errors.As(err, &pe) {
		e := *pe
		if e.Field == "" {
			e.Field = prefix
		} else {
			e.Field = prefix + "." + e.Field
		}
		return &e
	}
	return err
}
