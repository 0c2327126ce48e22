package api

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

// The API's decoders of untrusted bytes: the verify-batch body and the
// query parameters of lists, proofs and streams. Each must answer an
// *APIError or a *protocol.Error (the API's answers), never panic, and
// accept only what it can give back.

func FuzzParseBatch(f *testing.F) {
	one := `{"consent":"bafyreigraysvfbfvqawzcjyqj4bnogwajm2cpp36jejdtjxapdpmdauhri","from":"DE","to":"FR","sender":"12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8","recipient":"12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8","purpose":"research","categories":["face"],"tier":1,"retention_days":90}`
	for _, s := range []string{`{"requests":[` + one + `]}`, `{"requests":[` + one + `,` + one + `]}`, `{"requests":[]}`, `{}`, `{"requests":[1]}`, `[]`, `{"requests":[` + one + `]} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		reqs, err := parseBatch(body, 4)
		if err != nil {
			if toAPIError(err).Status >= 500 {
				t.Fatalf("parseBatch(%q): %v answers %d", body, err, toAPIError(err).Status)
			}
			return
		}
		if len(reqs) == 0 || len(reqs) > 4 {
			t.Fatalf("parseBatch accepted %d requests", len(reqs))
		}
		for _, r := range reqs {
			if !r.Consent.Defined() || r.Sender == "" {
				t.Fatalf("parseBatch accepted a request without consent or sender: %+v", r)
			}
		}
	})
}

func FuzzQueryParameters(f *testing.F) {
	for _, s := range []string{"kind=consent&limit=10", "after=5&limit=1000", "issuer=12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8",
		"jurisdiction=DE", "consent=bafyreigraysvfbfvqawzcjyqj4bnogwajm2cpp36jejdtjxapdpmdauhri&from=DE&to=FR", "from=1&to=3", "cid=bafy&size=2",
		"status=open&severity=high&since=2026-11-24T10:00:00Z", "limit=0", "after=-1", "a=%zz", "size=1&size=2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := &http.Request{URL: &url.URL{Path: "/", RawQuery: raw}, Header: http.Header{}}
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var ae *APIError
			if ae = toAPIError(err); ae.Status != http.StatusBadRequest && !errors.As(err, &ae) {
				t.Fatalf("%s(%q): %v answers %d, want 400", what, raw, err, ae.Status)
			}
			if ae.Status != http.StatusBadRequest {
				t.Fatalf("%s(%q): %v answers %d, want 400", what, raw, err, ae.Status)
			}
		}
		q, err := parseListQuery(r)
		check("parseListQuery", err)
		if err == nil && (q.Limit < 0 || q.Limit > 1000) {
			t.Fatalf("parseListQuery(%q) accepted limit %d", raw, q.Limit)
		}
		_, err = parseReceiptQuery(r)
		check("parseReceiptQuery", err)
		_, err = parseIncidentQuery(r, false)
		check("parseIncidentQuery", err)
		_, err = parseIncidentQuery(r, true)
		check("parseIncidentQuery(stream)", err)
		if v, err := queryParams(r, "from", "to", "cid", "size"); err == nil {
			for _, k := range []string{"from", "to", "size"} {
				if n, err := treeSize(v, k); err == nil && n == 0 {
					t.Fatalf("treeSize(%q) accepted 0", raw)
				} else {
					check("treeSize", err)
				}
			}
			if c := v.Get("cid"); c != "" {
				_, err := cidParam(c)
				check("cidParam", err)
			}
		} else {
			check("logQuery", err)
		}
	})
}
