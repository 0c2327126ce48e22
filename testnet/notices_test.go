package testnet

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

// noticeEvent is one event read from /v1/notices/stream.
type noticeEvent struct {
	name, id string
	data     api.NoticeEvent
}

// readNotice opens m's notices stream with token (and lastID, if any)
// and returns its first event.
func readNotice(ctx context.Context, t *testing.T, m *Member, token, lastID string) noticeEvent {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.APIAddr()+"/v1/notices/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the notices stream: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	var ev noticeEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				t.Fatal(err)
			}
		case line == "" && ev.name != "":
			return ev
		}
	}
	t.Fatalf("the notices stream ended without an event: %v", sc.Err())
	return ev
}

// TestRevocationCascade: a DE platform's consent, transferred to a BR
// platform (tier 1, decided on the DE node and delivered to the BR node)
// and resold within BR (tier 2, decided on the BR node), is revoked on
// the DE node while the BR node is down. Once the BR node is back, each
// BR recipient gets a consent-revoked notice on its stream naming its
// decision — the first platform after reconnecting with nothing lost —
// and the lineage shows when it was told.
func TestRevocationCascade(t *testing.T) {
	net, err := Start(Options{Dir: t.TempDir(), API: true, StreamKeepalive: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := NewTransferWorld(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	de, br := net.NodeOf("DE"), net.NodeOf("BR")
	v1, err := de.Services().Verify.Verify(ctx, w.Request)
	if err != nil || !v1.Decision.Allowed() {
		t.Fatalf("tier 1: %v %+v", err, v1)
	}
	if err := net.WaitDelivered(ctx, de, v1.Receipt.CID(), "BR"); err != nil {
		t.Fatal(err)
	}
	tier2, err := w.NextTier(ctx, w.Request, v1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := br.Services().Verify.Verify(ctx, tier2)
	if err != nil || !v2.Decision.Allowed() {
		t.Fatalf("tier 2: %v %+v", err, v2)
	}
	// The BR node goes down; the consent is revoked on the DE node.
	if err := br.Stop(); err != nil {
		t.Fatal(err)
	}
	rev, err := Sign(w.Platform.Key, &protocol.Revocation{Target: protocol.LinkTo(w.Consent.CID()), Reason: "withdrawn", EffectiveAt: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	if err := net.Submit(ctx, de, rev); err != nil {
		t.Fatal(err)
	}
	if err := br.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := br.Services().Ingest.WaitRecord(ctx, rev.CID()); err != nil {
		t.Fatalf("the BR node never got the revocation: %v", err)
	}
	recipientTok, err := br.Grant(ctx, "recipient", protocol.RoleController, w.Recipient.ID)
	if err != nil {
		t.Fatal(err)
	}
	buyer := tier2.Recipient
	buyerID, _ := protocol.ParsePeerID(buyer)
	buyerTok, err := br.Grant(ctx, "buyer", protocol.RoleController, buyerID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token   string
		receipt string
	}{{recipientTok, v1.Receipt.CID().String()}, {buyerTok, v2.Receipt.CID().String()}} {
		ev := readNotice(ctx, t, br, c.token, "")
		if ev.name != "consent-revoked" || ev.data.Consent != w.Consent.CID().String() || ev.data.By != rev.CID().String() ||
			len(ev.data.Decisions) != 1 || ev.data.Decisions[0].Receipt != c.receipt {
			t.Errorf("the notice: %+v, want consent-revoked naming %s", ev, c.receipt)
		}
	}
	// The lineage on the BR node says when each recipient was told.
	// (The server marks a decision once the event is written; the client
	// may read it first.)
	var l api.Lineage
	told := func() bool {
		lreq, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+br.APIAddr()+"/v1/consents/"+w.Consent.CID().String()+"/lineage", nil)
		lreq.Header.Set("Authorization", "Bearer "+br.Token)
		resp, err := http.DefaultClient.Do(lreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		l = api.Lineage{}
		return json.NewDecoder(resp.Body).Decode(&l) == nil && len(l.Roots) == 1 && l.Roots[0].NotifiedAt != "" &&
			len(l.Roots[0].Children) == 1 && l.Roots[0].Children[0].NotifiedAt != ""
	}
	if err := net.waitUntil(ctx, "the lineage to show both notices delivered", told); err != nil {
		t.Fatalf("%v: %+v", err, l.Roots)
	}
	// Told once: a stream opened again without Last-Event-ID replays no
	// notice already delivered; with the ID before it, it does.
	ctx2, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, http.MethodGet, "http://"+br.APIAddr()+"/v1/notices/stream", nil)
	req.Header.Set("Authorization", "Bearer "+recipientTok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event: ") {
				t.Errorf("a delivered notice was replayed: %s", sc.Text())
			}
		}
		resp.Body.Close()
	}
	if ev := readNotice(ctx, t, br, recipientTok, "0"); ev.name != "consent-revoked" {
		t.Errorf("from event 0: %+v", ev)
	}
}
