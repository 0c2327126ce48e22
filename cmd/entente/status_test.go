package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/rejoin"
	"github.com/entente-net/entente/node/witness"
)

// TestStatusReadiness: status says whether the node is ready, in the
// node's words (/readyz), and leaves the line out when the node says
// nothing it understands.
func TestStatusReadiness(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusOK, `{"ready":true,"peers":2}`, "yes"},
		{http.StatusServiceUnavailable, `{"ready":false,"reason":"no member node connected (the federation has 2 besides this one)"}`,
			"no: no member node connected (the federation has 2 besides this one)"},
		{http.StatusNotFound, `{"error":"not_found","message":"no such endpoint"}`, ""},
		{http.StatusServiceUnavailable, `overloaded`, ""},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				t.Errorf("readiness asked for %s", r.URL.Path)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		cl := &apiClient{base: srv.URL, http: srv.Client()}
		if got := readiness(cl); got != tc.want {
			t.Errorf("/readyz answering %d %s: readiness %q, want %q", tc.status, tc.body, got, tc.want)
		}
		srv.Close()
	}
}

// TestStatusPrintsAlerts: the equivocations a node saw are in status's
// text (the runbook starts from them), each with the peer, its two
// checkpoints and the incident; a node without any says so. Signing held
// after a restore is shown too.
func TestStatusPrintsAlerts(t *testing.T) {
	const peerID = "12D3KooWHK3uqPN8zMPAp5Ktk8xLdKW8LzFQgjHnfHPEh6JA9Cwk"
	st := &node.Status{PeerID: "12D3KooWMuSkpaxWcfjMdzg16BsAXVi3ZqswjvJynhF5bE4iXJgF", Federation: "pilot", Jurisdiction: "DE"}
	st.Log.Held = &rejoin.Status{Held: true, Reason: "restored from a backup: waiting for 1 member node", Waiting: []string{peerID}}
	st.Log.VerifierKey = "entente/pilot/" + st.PeerID + "+01020304+AQ"
	var out bytes.Buffer
	printStatus(&out, st, "no: shutting down")
	for _, want := range []string{"ready       no: shutting down\n", "alerts      none\n", "asked as    the public (no token)\n",
		"log         0 records; signing held: restored from a backup: waiting for 1 member node\n  checkpoints verify with entente/pilot/" + st.PeerID + "+01020304+AQ\n  waiting for " + peerID + "\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status without alerts does not say %q:\n%s", want, out.String())
		}
	}

	st.Alerts = []witness.Alert{{PeerID: peerID, Size: 7, Kind: witness.EquivocationSameSize, Sizes: []uint64{7, 7},
		Roots: []string{"rootA=", "rootB="}, DetectedAt: "2026-12-05T22:30:49Z", Incident: "bafyreiincident"}}
	out.Reset()
	printStatus(&out, st, "")
	want := "alerts      1 equivocations seen (docs/operating.md, \"Responding to an equivocation alert\"; the two signed checkpoints of each: --json, alerts[].notes)\n" +
		"  " + peerID + "  same-size: size 7 root rootA= and size 7 root rootB=, detected 2026-12-05T22:30:49Z, incident bafyreiincident\n"
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("status with an alert ends\n%s\nwant it to end\n%s", out.String(), want)
	}
	st.Log.Held = nil
	st.Caller = &api.CallerView{Name: "de-desk", Role: "regulator", PeerID: peerID}
	out.Reset()
	printStatus(&out, st, "")
	if want := "asked as    de-desk, regulator " + peerID + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("status with a caller does not say %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String(), "ready") || strings.Contains(out.String(), "held") {
		t.Errorf("status printed a ready line without an answer from /readyz, or signing held when it is not:\n%s", out.String())
	}
}
