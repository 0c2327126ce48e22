package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
	"github.com/entente-net/entente/testnet"
)

// noteSigner is golang.org/x/mod's own signer for a libp2p Ed25519 key
// under name: an independent implementation to compare the node's with.
func noteSigner(t *testing.T, name string, key crypto.PrivKey) note.Signer {
	t.Helper()
	raw, err := key.Raw() // seed, then public key
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	hash := strings.Split(strings.TrimPrefix(vkey, name+"+"), "+")[0]
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, raw[:32]...))
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckpointNoteVerifies(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	for i := 0; i < 3; i++ {
		c.submit(freshAccreditation(t, tn, "DE", fmt.Sprintf("checkpoint %d", i)))
	}
	if _, err := m.Services().Checkpoints.Sign(); err != nil {
		t.Fatal(err)
	}
	resp := c.get("/v1/log/checkpoint", "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /v1/log/checkpoint: %d %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	origin := "entente/" + tn.Federation.Name + "/" + m.ID().String()
	if got := protocol.CheckpointOrigin(tn.Federation.Name, m.ID()); got != origin {
		t.Fatalf("CheckpointOrigin = %q, want %q", got, origin)
	}

	// The verifier key is the one note itself derives from the public key.
	vkey, err := protocol.CheckpointVerifierKey(tn.Federation.Name, m.ID())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := m.Key.GetPublic().Raw()
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := note.NewEd25519VerifierKey(origin, pub); vkey != want {
		t.Fatalf("verifier key\n%s\nwant\n%s", vkey, want)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(resp.body, note.VerifierList(v))
	if err != nil {
		t.Fatalf("note.Open: %v\n%s", err, resp.body)
	}
	th, err := m.Store().TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	if th.Size != 3 {
		t.Fatalf("tree size %d, want 3", th.Size)
	}
	want := fmt.Sprintf("%s\n%d\n%s\n", origin, th.Size, base64.StdEncoding.EncodeToString(th.Root[:]))
	if n.Text != want {
		t.Fatalf("checkpoint text\n%s\nwant\n%s", n.Text, want)
	}
	if len(n.Sigs) != 1 || n.Sigs[0].Name != origin {
		t.Fatalf("signatures %+v, want one by %s", n.Sigs, origin)
	}
	// Ed25519 is deterministic: note's own signer with the node's key
	// gives the same bytes.
	again, err := note.Sign(&note.Note{Text: n.Text}, noteSigner(t, origin, m.Key))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, resp.body) {
		t.Fatalf("note's signer gives\n%s\nthe node served\n%s", again, resp.body)
	}

	sc, err := protocol.OpenCheckpoint(resp.body, tn.Federation.Name, m.ID())
	if err != nil {
		t.Fatal(err)
	}
	if sc.Origin != origin || sc.Size != th.Size || sc.Root != th.Root {
		t.Fatalf("OpenCheckpoint = %+v, want %s %d %s", sc.LogCheckpoint, origin, th.Size, th.Root)
	}
	_, other := newKey(t)
	if _, err := protocol.OpenCheckpoint(resp.body, tn.Federation.Name, other); err == nil {
		t.Error("OpenCheckpoint accepted the note as another node's")
	}
	if _, err := protocol.OpenCheckpoint(resp.body, "other", m.ID()); err == nil {
		t.Error("OpenCheckpoint accepted the note for another federation")
	}
	// Any change to the text fails.
	for i := 0; i < len(n.Text); i++ {
		bent := bytes.Clone(resp.body)
		bent[i] ^= 0x01
		if _, err := protocol.OpenCheckpoint(bent, tn.Federation.Name, m.ID()); err == nil {
			t.Fatalf("OpenCheckpoint accepted the note with byte %d changed:\n%s", i, bent)
		}
	}
}

func TestCheckpointSignedOncePerSize(t *testing.T) {
	tn := startNet(t, 1)
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	if _, err := m.Services().Checkpoints.Sign(); !errors.Is(err, service.ErrEmptyLog) {
		t.Fatalf("SignCheckpoint of an empty log: %v, want ErrEmptyLog", err)
	}
	c.submit(freshAccreditation(t, tn, "DE", "once 1"))
	first, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Note, second.Note) {
		t.Fatalf("two notes for size %d:\n%s\n%s", first.Size, first.Note, second.Note)
	}
	if got := metricValue(t, m.Registry(), "entente_checkpoints_signed_total", nil); got != 1 {
		t.Fatalf("entente_checkpoints_signed_total = %v, want 1", got)
	}
	c.submit(freshAccreditation(t, tn, "DE", "once 2"))
	c.submit(freshAccreditation(t, tn, "DE", "once 3"))
	// The latest stays until the node signs again.
	latest, err := m.Services().Checkpoints.Latest()
	if err != nil || latest.Size != 1 {
		t.Fatalf("LatestCheckpoint = %d, %v; want size 1", latest.Size, err)
	}
	third, err := m.Services().Checkpoints.Sign()
	if err != nil || third.Size != 3 {
		t.Fatalf("SignCheckpoint = %d, %v; want size 3", third.Size, err)
	}
	if got := metricValue(t, m.Registry(), "entente_checkpoints_signed_total", nil); got != 2 {
		t.Fatalf("entente_checkpoints_signed_total = %v, want 2", got)
	}
	if got := metricValue(t, m.Registry(), "entente_log_size", nil); got != 3 {
		t.Fatalf("entente_log_size = %v, want 3", got)
	}

	var st node.Status
	decodeJSON(t, c.get("/v1/status", "").body, &st)
	th, err := m.Store().TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	if st.Log.Size != 3 || st.Log.Root != base64.StdEncoding.EncodeToString(th.Root[:]) || st.Log.CheckpointSize != 3 {
		t.Fatalf("status log %+v, want size 3, root %s, checkpoint 3", st.Log, th.Root)
	}
}

// diskConfig is a node of a one-jurisdiction federation (DE) with no
// founding nodes and its data in dir; it returns DE's authority key too.
func diskConfig(t *testing.T, dir string) (node.Config, crypto.PrivKey) {
	t.Helper()
	key, _ := newKey(t)
	authKey, authority := newKey(t)
	return node.Config{
		Key: key,
		Federation: &config.Federation{
			Name:          "standalone",
			Jurisdictions: []config.Jurisdiction{{Code: "DE", Name: "Germany", Authority: authority.String()}},
		},
		Jurisdiction: "DE",
		DataDir:      dir,
	}, authKey
}

func submitAccreditations(t *testing.T, n *node.Node, authKey crypto.PrivKey, count int) {
	t.Helper()
	for i := 0; i < count; i++ {
		_, id := newKey(t)
		r := mustSign(t, authKey, accreditation(id, "DE", fmt.Sprintf("auditor %d", i), protocol.RoleAuditor))
		if _, err := n.Services().Ingest.SubmitRecord(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointOnInterval(t *testing.T) {
	cfg, authKey := diskConfig(t, t.TempDir())
	cfg.InMemory, cfg.DataDir = true, ""
	cfg.CheckpointInterval = 20 * time.Millisecond
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	submitAccreditations(t, n, authKey, 2)
	eventually(t, 5*time.Second, "a checkpoint of size 2", func() bool { return n.Status(false).Log.CheckpointSize == 2 })
	submitAccreditations(t, n, authKey, 1)
	eventually(t, 5*time.Second, "a checkpoint of size 3", func() bool { return n.Status(false).Log.CheckpointSize == 3 })
	// Ticks without growth sign nothing more. (A tick between the first
	// two records may have signed size 1 too.)
	signed := metricValue(t, n.Registry(), "entente_checkpoints_signed_total", nil)
	time.Sleep(100 * time.Millisecond)
	if got := metricValue(t, n.Registry(), "entente_checkpoints_signed_total", nil); got != signed {
		t.Fatalf("entente_checkpoints_signed_total went from %v to %v while the log stood still", signed, got)
	}
}

func TestNewRefusesNegativeCheckpointInterval(t *testing.T) {
	cfg, _ := diskConfig(t, t.TempDir())
	cfg.CheckpointInterval = -time.Second
	if n, err := node.New(cfg); err == nil || !strings.Contains(err.Error(), "CheckpointInterval") {
		if n != nil {
			n.Close()
		}
		t.Fatalf("New with a negative CheckpointInterval: %v", err)
	}
}

// TestCheckpointSurvivesRestart: after a restart the node serves the same
// note for the same size, and its next checkpoint is consistent with the
// one before the restart.
func TestCheckpointSurvivesRestart(t *testing.T) {
	tn, err := testnet.Start(testnet.Options{Nodes: 1, API: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tn.Close()
	m := tn.Nodes[0]
	c := newAPIClient(t, m)
	var recs []*protocol.Record
	for i := 0; i < 4; i++ {
		r := freshAccreditation(t, tn, "DE", fmt.Sprintf("before %d", i))
		c.submit(r)
		recs = append(recs, r)
	}
	first, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	before := c.get("/v1/log/checkpoint", "")

	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	c = newAPIClient(t, m) // a new API port
	after := c.get("/v1/log/checkpoint", "")
	if after.status != http.StatusOK || !bytes.Equal(after.body, before.body) {
		t.Fatalf("after restart the checkpoint of size %d is\n%s\nbefore it was\n%s", first.Size, after.body, before.body)
	}
	if again, err := m.Services().Checkpoints.Sign(); err != nil || !bytes.Equal(again.Note, first.Note) {
		t.Fatalf("SignCheckpoint after restart, same size: %v\n%s", err, again.Note)
	}

	for i := 0; i < 3; i++ {
		r := freshAccreditation(t, tn, "DE", fmt.Sprintf("after %d", i))
		c.submit(r)
		recs = append(recs, r)
	}
	second, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if second.Size != 7 {
		t.Fatalf("second checkpoint size %d, want 7", second.Size)
	}
	var cp api.ConsistencyProof
	resp := c.get(fmt.Sprintf("/v1/log/consistency?from=%d&to=%d", first.Size, second.Size), "")
	if resp.status != http.StatusOK {
		t.Fatalf("consistency: %d %s", resp.status, resp.body)
	}
	decodeJSON(t, resp.body, &cp)
	if err := tlog.CheckTree(cp.Hashes, int64(second.Size), second.Root, int64(first.Size), first.Root); err != nil {
		t.Fatalf("consistency %d -> %d across a restart: %v", first.Size, second.Size, err)
	}
	// Every record, old and new, is in the new tree.
	for i, r := range recs {
		checkInclusion(t, c, r, second, uint64(i))
	}
}

// TestNewRefusesACheckpointThatDisagrees: a store whose kept checkpoint
// states another tree than the log's (here: a note for a size, signed by
// the node's key, with another root) makes New fail. The store's own
// check (a kept root or size the log does not have) is tested in store.
func TestNewRefusesACheckpointThatDisagrees(t *testing.T) {
	dir := t.TempDir()
	cfg, authKey := diskConfig(t, dir)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	submitAccreditations(t, n, authKey, 3)
	sc, err := n.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// The same node restarts fine.
	if n, err = node.New(cfg); err != nil {
		t.Fatalf("restart: %v", err)
	}
	n.Close()

	forged := sc.LogCheckpoint
	forged.Root[0] ^= 1
	bad, err := note.Sign(&note.Note{Text: forged.Text()}, noteSigner(t, forged.Origin, cfg.Key))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(store.Checkpoint{Size: sc.Size, Root: sc.Root, Note: bad}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	n, err = node.New(cfg)
	if err == nil {
		n.Close()
		t.Fatal("New started on a store whose checkpoint disagrees with its log")
	}
	if !errors.Is(err, store.ErrCheckpointMismatch) || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("New: %v; want a refusal wrapping store.ErrCheckpointMismatch", err)
	}
	t.Log(err)
}

// TestCheckpointOfAnotherOriginIsIgnored: a node started on the data of a
// node with another key does not take that node's checkpoint as its own.
func TestCheckpointOfAnotherOriginIsIgnored(t *testing.T) {
	dir := t.TempDir()
	cfg, authKey := diskConfig(t, dir)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	submitAccreditations(t, n, authKey, 2)
	theirs, err := n.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	n.Close()

	cfg2 := cfg
	cfg2.Key, _ = newKey(t)
	n2, err := node.New(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	id2 := n2.ID()
	ours, err := n2.Services().Checkpoints.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if ours.Origin != protocol.CheckpointOrigin("standalone", id2) || ours.Size != theirs.Size || ours.Root != theirs.Root {
		t.Fatalf("checkpoint %+v; want the new node's own of size %d", ours.LogCheckpoint, theirs.Size)
	}
	if _, err := protocol.OpenCheckpoint(ours.Note, "standalone", id2); err != nil {
		t.Fatal(err)
	}
}
