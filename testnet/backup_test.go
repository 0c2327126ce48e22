package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// backupOf takes a backup of m's store through its API, as `entente
// backup` does, while m runs.
func backupOf(t *testing.T, ctx context.Context, m *Member) ([]byte, store.BackupInfo) {
	t.Helper()
	b, err := m.Get(ctx, "/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.CheckBackup(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// restoreMember stops m, moves its data directory aside (returned),
// restores backup in its place and starts m again: a node replaced from
// its backup, with its key and configuration.
func restoreMember(t *testing.T, m *Member, backup []byte) string {
	t.Helper()
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	old := m.DataDir + ".old"
	if err := os.Rename(m.DataDir, old); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Restore(m.DataDir, bytes.NewReader(backup)); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	return old
}

// witnessAll has every other running node witness m's latest checkpoint
// now, and fails on an equivocation.
func witnessAll(t *testing.T, ctx context.Context, net *Net, m *Member) {
	t.Helper()
	for _, p := range net.Running() {
		if p != m {
			if err := p.Services().Witness.Peer(ctx, m.ID()); err != nil {
				t.Fatalf("node %d witnessing node %d: %v", p.Index, m.Index, err)
			}
		}
	}
}

// heldAt is the size of m's checkpoint that node p holds as verified.
func heldAt(p, m *Member) uint64 {
	for _, st := range p.Services().Witness.Witnessed() {
		if st.PeerID == m.ID().String() {
			return st.Size
		}
	}
	return 0
}

// noAlerts fails if a node saw an equivocation.
func noAlerts(t *testing.T, net *Net) {
	t.Helper()
	for _, p := range net.Running() {
		if a := p.Services().Witness.Alerts(); len(a) > 0 {
			t.Fatalf("node %d saw an equivocation: %+v", p.Index, a)
		}
	}
}

func waitDone(t *testing.T, ctx context.Context, m *Member) {
	t.Helper()
	select {
	case <-m.Services().Rejoin.Done():
	case <-ctx.Done():
		t.Fatalf("node %d is still held: %+v", m.Index, m.Services().Rejoin.Status())
	}
}

// TestBackupRestoreRejoins: a node with records (its receipts among
// them) is backed up through its API while it runs; its data directory
// is replaced by the backup and it starts again. It asks its peers which
// of its checkpoints they hold, resumes signing, holds every record with
// the same log, and goes on: its next checkpoint extends the ones it
// signed before (its peers witness it, and the consistency proof holds),
// and its records' seqs, the incident stream's event IDs, go on above
// the backup's.
func TestBackupRestoreRejoins(t *testing.T) {
	net, err := Start(Options{API: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := NewTransferWorld(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	m := net.NodeOf("DE")
	for range 3 {
		if v, err := m.Services().Verify.Verify(ctx, w.Request); err != nil || v.Receipt == nil {
			t.Fatalf("verify: %v", err)
		}
	}
	before, err := m.Services().Checkpoints.Sign()
	if err != nil {
		t.Fatal(err)
	}
	witnessAll(t, ctx, net, m)

	start := time.Now()
	backup, info := backupOf(t, ctx, m)
	t.Logf("backup of %d records: %d keys, %d bytes in %s", info.Tree.Size, info.Keys, len(backup), time.Since(start).Round(time.Millisecond))
	if info.Tree.Size != m.Store().Len() || info.CheckpointSize != before.Size {
		t.Fatalf("backup %+v; the node has %d records and a checkpoint of %d", info, m.Store().Len(), before.Size)
	}
	old := restoreMember(t, m, backup)
	waitDone(t, ctx, m)
	if st := m.Services().Rejoin.Status(); st.Held || m.Services().Checkpoints.Held() {
		t.Fatalf("still held after the peers answered: %+v", st)
	}

	// Every record, the same log.
	src, err := store.Open(store.Options{Dir: old})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for after := uint64(0); ; {
		page, next, err := src.List(store.Query{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if seq, err := m.Store().Seq(e.Record.CID()); err != nil || seq != e.Seq {
				t.Fatalf("record %s: seq %d, %v after the restore; %d before", e.Record.CID(), seq, err, e.Seq)
			}
		}
		if next == 0 {
			break
		}
		after = next
	}
	want, _ := src.TreeHead()
	if got, err := m.Store().TreeHead(); err != nil || got != want || got != info.Tree {
		t.Fatalf("log after the restore %+v (%v); before %+v", got, err, want)
	}

	// It goes on: a receipt, a new checkpoint, witnessed as consistent.
	v, err := m.Services().Verify.Verify(ctx, w.Request)
	if err != nil || v.Receipt == nil {
		t.Fatalf("verify after the restore: %v", err)
	}
	if seq, err := m.Store().Seq(v.Receipt.CID()); err != nil || seq != info.Tree.Size+1 {
		t.Fatalf("the first record after the restore has seq %d (%v); want %d, above the backup's", seq, err, info.Tree.Size+1)
	}
	after, err := m.Services().Checkpoints.Sign()
	if err != nil || after.Size != info.Tree.Size+1 {
		t.Fatalf("the checkpoint after the restore: %+v, %v", after, err)
	}
	proof, err := m.Store().ConsistencyProof(before.Size, after.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(proof, int64(after.Size), after.Root, int64(before.Size), before.Root); err != nil {
		t.Fatalf("the checkpoint after the restore does not extend the one before: %v", err)
	}
	witnessAll(t, ctx, net, m)
	for _, p := range net.Running() {
		if p != m && heldAt(p, m) != after.Size {
			t.Fatalf("node %d holds node %d's checkpoint of %d; want %d", p.Index, m.Index, heldAt(p, m), after.Size)
		}
	}
	noAlerts(t, net)
}

// TestRestoredNodeSignsNothingBelowItsPeers (DESIGN.md §6, "Restoring a
// node"): a node restored from a backup older than a checkpoint its peers
// witnessed signs no checkpoint and no receipt until its log has that
// checkpoint's tree. DE gets back the two records it lost after its
// backup, in the order it had them: held after the first, it resumes from
// the peers' checkpoint after the second, and goes on signing. FR gets
// them in the other order, so its log can never extend what it signed:
// it stays held and says it needs a new key. No peer sees an
// equivocation. Sync is off and the lost records are imported (never
// gossiped), so that what each node's log holds is the test's doing.
func TestRestoredNodeSignsNothingBelowItsPeers(t *testing.T) {
	net, err := Start(Options{API: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := NewTransferWorld(ctx, net)
	if err != nil {
		t.Fatal(err)
	}
	consent := func() *protocol.Record {
		subject := make([]byte, 32)
		rand.Read(subject)
		r, err := Sign(w.Platform.Key, &protocol.Consent{Subject: subject, Jurisdiction: "DE", Categories: []string{"face"},
			Purposes: []string{"research"}, MaxTier: 1, Destinations: []string{"BR"}, RetentionDays: 30,
			ExpiresAt: time.Now().AddDate(1, 0, 0).UnixMilli(), Method: "opt-in"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	imp := func(m *Member, r *protocol.Record) {
		t.Helper()
		if _, err := m.Services().Ingest.Import(ctx, r.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	type scenario struct {
		m      *Member
		backup store.BackupInfo
		peers  protocol.SignedCheckpoint // the largest its peers hold
		back   []*protocol.Record        // the lost records, in the order they come back
	}
	// For each node: a backup, then two records and a checkpoint its
	// peers witness; then the node is restored from the backup.
	var scs []*scenario
	for _, m := range []*Member{net.NodeOf("DE"), net.NodeOf("FR")} {
		if _, err := m.Services().Checkpoints.Sign(); err != nil {
			t.Fatal(err)
		}
		witnessAll(t, ctx, net, m)
		b, info := backupOf(t, ctx, m)
		lost := []*protocol.Record{consent(), consent()}
		imp(m, lost[0])
		imp(m, lost[1])
		peers, err := m.Services().Checkpoints.Sign()
		if err != nil || peers.Size != info.Tree.Size+2 {
			t.Fatalf("node %d's checkpoint after its backup: %+v, %v", m.Index, peers, err)
		}
		witnessAll(t, ctx, net, m)
		back := lost
		if m.Jurisdiction() == "FR" {
			back = []*protocol.Record{lost[1], lost[0]}
		}
		restoreMember(t, m, b)
		scs = append(scs, &scenario{m: m, backup: info, peers: peers, back: back})
	}
	for _, s := range scs {
		m := s.m
		if err := net.waitUntil(ctx, fmt.Sprintf("node %d to hear from its peers", m.Index), func() bool {
			st := m.Services().Rejoin.Status()
			return len(st.Waiting) == 0 && st.Target == s.peers.Size
		}); err != nil {
			t.Fatalf("%v: %+v", err, m.Services().Rejoin.Status())
		}
		st := m.Status(false)
		if st.Log.Held == nil || !st.Log.Held.Held || st.Log.CheckpointSize != s.backup.CheckpointSize {
			t.Fatalf("node %d after the restore: log %+v; want held at the backup's checkpoint %d", m.Index, st.Log, s.backup.CheckpointSize)
		}
		if v, err := m.Services().Verify.Verify(ctx, w.Request); err != nil || v.Receipt != nil || v.Unsigned != service.UnsignedHeld {
			t.Fatalf("node %d verifies while held: %v (signed: %v)", m.Index, err, err == nil && v.Receipt != nil)
		}
		if ready, why := m.Ready(); ready || !strings.Contains(why, "signing held") {
			t.Fatalf("node %d while held: ready %v (%s)", m.Index, ready, why)
		}
		// One record back: the log grows, not to the peers' size.
		imp(m, s.back[0])
		if _, err := m.Services().Checkpoints.Sign(); !errors.Is(err, service.ErrSigningHeld) {
			t.Fatalf("node %d signs while held: %v", m.Index, err)
		}
		if got := m.Services().Checkpoints.LatestSize(); got != s.backup.CheckpointSize {
			t.Fatalf("node %d's latest checkpoint %d while held; want the backup's %d", m.Index, got, s.backup.CheckpointSize)
		}
		// The second: the log has the peers' size.
		imp(m, s.back[1])
		waitDone(t, ctx, m)
	}
	de, fr := scs[0], scs[1]
	if de.m.Services().Rejoin.Status().Held || de.m.Services().Checkpoints.LatestSize() != de.peers.Size {
		t.Fatalf("DE with its records back in order: %+v, latest checkpoint %d; want resumed from %d",
			de.m.Services().Rejoin.Status(), de.m.Services().Checkpoints.LatestSize(), de.peers.Size)
	}
	if v, err := de.m.Services().Verify.Verify(ctx, w.Request); err != nil || v.Receipt == nil {
		t.Fatalf("DE verifies once resumed: %v", err)
	}
	next, err := de.m.Services().Checkpoints.Sign()
	if err != nil || next.Size != de.peers.Size+1 {
		t.Fatalf("DE's checkpoint once resumed: %+v, %v", next, err)
	}
	proof, err := de.m.Store().ConsistencyProof(de.peers.Size, next.Size)
	if err == nil {
		err = tlog.CheckTree(proof, int64(next.Size), next.Root, int64(de.peers.Size), de.peers.Root)
	}
	if err != nil {
		t.Fatalf("DE's checkpoint does not extend the one its peers hold: %v", err)
	}
	witnessAll(t, ctx, net, de.m)

	st := fr.m.Services().Rejoin.Status()
	if !st.Held || !st.Diverged || !fr.m.Services().Checkpoints.Held() {
		t.Fatalf("FR with its records back in another order: %+v; want held for good", st)
	}
	if _, err := fr.m.Services().Checkpoints.Sign(); !errors.Is(err, service.ErrSigningHeld) {
		t.Fatalf("FR signs with a diverged log: %v", err)
	}
	witnessAll(t, ctx, net, fr.m) // it serves the backup's checkpoint: older than theirs
	noAlerts(t, net)
}
