package node_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

// checkInclusion asks the API for r's inclusion in cp's tree and checks
// the proof with tlog against cp's root, as an auditor would.
func checkInclusion(t *testing.T, c *apiClient, r *protocol.Record, cp protocol.SignedCheckpoint, wantIndex uint64) {
	t.Helper()
	resp := c.get(fmt.Sprintf("/v1/log/proof?cid=%s&size=%d", r.CID(), cp.Size), "")
	if resp.status != http.StatusOK {
		t.Fatalf("proof of %s in %d: %d %s", r.CID(), cp.Size, resp.status, resp.body)
	}
	var p api.InclusionProof
	decodeJSON(t, resp.body, &p)
	if p.Index != wantIndex || p.Size != cp.Size {
		t.Fatalf("proof of %s: index %d size %d, want %d %d", r.CID(), p.Index, p.Size, wantIndex, cp.Size)
	}
	leaf := tlog.RecordHash(r.CID().Bytes())
	if err := tlog.CheckRecord(p.Hashes, int64(p.Size), cp.Root, int64(p.Index), leaf); err != nil {
		t.Fatalf("proof of %s (leaf %d) in the tree of %d: %v", r.CID(), p.Index, p.Size, err)
	}
}

func TestLogProofsVerify(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	var recs []*protocol.Record
	submit := func(count int) {
		for i := 0; i < count; i++ {
			r := freshAccreditation(t, tn, "DE", fmt.Sprintf("proof %d", len(recs)))
			c.submit(r)
			recs = append(recs, r)
		}
	}
	submit(10)
	// No checkpoint yet: the endpoint signs one.
	var first protocol.SignedCheckpoint
	{
		resp := c.get("/v1/log/checkpoint", "")
		if resp.status != http.StatusOK {
			t.Fatalf("checkpoint: %d %s", resp.status, resp.body)
		}
		var err error
		if first, err = protocol.OpenCheckpoint(resp.body, tn.Federation.Name, m.ID()); err != nil {
			t.Fatal(err)
		}
		// An auditor's way: the verifier key from the public status,
		// and x/mod's note alone.
		var st struct {
			Log struct {
				VerifierKey string `json:"verifier_key"`
			}
		}
		decodeJSON(t, newAPIClientAt(t, m.APIAddr(), "").get("/v1/status", "").body, &st)
		v, err := note.NewVerifier(st.Log.VerifierKey)
		if err != nil {
			t.Fatalf("status's verifier key %q: %v", st.Log.VerifierKey, err)
		}
		if _, err := note.Open(resp.body, note.VerifierList(v)); err != nil {
			t.Fatalf("the checkpoint does not open with status's verifier key: %v", err)
		}
	}
	if first.Size != 10 {
		t.Fatalf("first checkpoint of size %d, want 10", first.Size)
	}
	for i, r := range recs {
		checkInclusion(t, c, r, first, uint64(i))
	}
	// Without size, the proof is in the latest checkpoint's tree.
	resp := c.get("/v1/log/proof?cid="+recs[6].CID().String(), "")
	var p api.InclusionProof
	decodeJSON(t, resp.body, &p)
	if p.Size != first.Size || p.Index != 6 {
		t.Fatalf("default proof: index %d size %d, want 6 %d", p.Index, p.Size, first.Size)
	}
	if err := tlog.CheckRecord(p.Hashes, int64(p.Size), first.Root, 6, tlog.RecordHash(recs[6].CID().Bytes())); err != nil {
		t.Fatal(err)
	}

	submit(7)
	// Records past the latest checkpoint are not in its tree yet.
	resp = c.get("/v1/log/proof?cid="+recs[12].CID().String(), "")
	wantAPIError(t, resp, http.StatusBadRequest, api.CodeBadRequest)
	second, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if second.Size != 17 {
		t.Fatalf("second checkpoint of size %d, want 17", second.Size)
	}
	for i, r := range recs {
		checkInclusion(t, c, r, second, uint64(i))
	}
	for _, tc := range []struct{ from, to protocol.SignedCheckpoint }{{first, second}, {first, first}, {second, second}} {
		resp := c.get(fmt.Sprintf("/v1/log/consistency?from=%d&to=%d", tc.from.Size, tc.to.Size), "")
		if resp.status != http.StatusOK {
			t.Fatalf("consistency %d -> %d: %d %s", tc.from.Size, tc.to.Size, resp.status, resp.body)
		}
		var cp api.ConsistencyProof
		decodeJSON(t, resp.body, &cp)
		if cp.Hashes == nil {
			t.Fatalf("consistency %d -> %d: hashes missing (want a list, even empty): %s", tc.from.Size, tc.to.Size, resp.body)
		}
		if err := tlog.CheckTree(cp.Hashes, int64(tc.to.Size), tc.to.Root, int64(tc.from.Size), tc.from.Root); err != nil {
			t.Fatalf("consistency %d -> %d: %v", tc.from.Size, tc.to.Size, err)
		}
	}
	// A proof of a tree that is no checkpoint still checks against the
	// root the store computes for it.
	root, err := m.Store().TreeHash(13)
	if err != nil {
		t.Fatal(err)
	}
	checkInclusion(t, c, recs[12], protocol.SignedCheckpoint{LogCheckpoint: protocol.LogCheckpoint{Size: 13, Root: root}}, 12)
}

func TestLogEndpointsRefuseBadParams(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)

	// An empty log has no checkpoint.
	wantAPIError(t, c.get("/v1/log/checkpoint", ""), http.StatusNotFound, api.CodeNotFound)

	var recs []*protocol.Record
	for i := 0; i < 5; i++ {
		r := freshAccreditation(t, tn, "DE", fmt.Sprintf("params %d", i))
		c.submit(r)
		recs = append(recs, r)
	}
	if _, err := m.Services().Checkpoints.Sign(); err != nil {
		t.Fatal(err)
	}
	held := recs[3].CID().String() // leaf 3
	notHeld := protocol.RecordCID([]byte("not a record")).String()
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/log/checkpoint?size=3", 400, api.CodeBadRequest},
		{"/v1/log/proof", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=bafynotacid", 400, string(protocol.CodeBadCID)},
		{"/v1/log/proof?cid=" + notHeld, 404, api.CodeNotFound},
		{"/v1/log/proof?cid=" + held + "&size=0", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&size=-1", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&size=x", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&size=", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&size=3", 400, api.CodeBadRequest}, // leaf 3 is not in a tree of 3
		{"/v1/log/proof?cid=" + held + "&size=6", 400, api.CodeBadRequest}, // beyond the log
		{"/v1/log/proof?cid=" + held + "&size=99999999999999999999", 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&cid=" + held, 400, api.CodeBadRequest},
		{"/v1/log/proof?cid=" + held + "&index=3", 400, api.CodeBadRequest},
		{"/v1/log/consistency", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=1", 400, api.CodeBadRequest},
		{"/v1/log/consistency?to=5", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=0&to=5", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=4&to=3", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=1&to=6", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=1&to=5&x=1", 400, api.CodeBadRequest},
		{"/v1/log/consistency?from=a&to=5", 400, api.CodeBadRequest},
	} {
		t.Run(url.QueryEscape(tc.path), func(t *testing.T) {
			wantAPIError(t, c.get(tc.path, ""), tc.status, tc.code)
		})
	}
	// The edges that are fine.
	for _, path := range []string{
		"/v1/log/proof?cid=" + held + "&size=4",
		"/v1/log/proof?cid=" + held + "&size=5",
		"/v1/log/consistency?from=1&to=1",
		"/v1/log/consistency?from=1&to=5",
		"/v1/log/consistency?from=5&to=5",
	} {
		if resp := c.get(path, ""); resp.status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.status, resp.body)
		}
	}
}
