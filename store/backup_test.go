package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// TestBackupWhileWriting: a backup taken while records, checkpoints and
// witness states are being written holds every record acknowledged
// before it began, restores to a store with the same log (a prefix of the
// source's), the checkpoint, the side state, the notices' and records'
// sequences, and says so in its header.
func TestBackupWhileWriting(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	sg := newSigner(t)
	var first []*protocol.Record
	for range 300 {
		first = append(first, sg.consent(t, "DE"))
	}
	if _, err := s.PutMany(ctx, first); err != nil {
		t.Fatal(err)
	}
	th, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)}); err != nil {
		t.Fatal(err)
	}
	peerA, peerB := peerID(t), peerID(t)
	if err := s.SaveWitnessState(WitnessState{Peer: peerA.String(), Size: 7, Note: []byte("note"), At: 1}); err != nil {
		t.Fatal(err)
	}
	kept, dropped := first[0].CID(), first[1].CID()
	for _, c := range []cid.Cid{kept, dropped} {
		if err := s.PutOutbox(OutboxEntry{Record: c, Peer: peerB, Jurisdiction: "FR", Added: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteOutbox(dropped, peerB); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.PutNotice(Notice{Event: "consent-revoked", Recipient: "p"}); err != nil {
			t.Fatal(err)
		}
	}

	// Writers: records, checkpoints of the log as it grows, witness states.
	var mu sync.Mutex
	acked := append([]cid.Cid(nil), cidsOf(first)...)
	busy := make(chan struct{}) // closed once 600 records are acknowledged
	var busyOnce sync.Once
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for wctx.Err() == nil {
				r := sg.consent(t, "DE")
				if _, err := s.Put(wctx, r); err != nil {
					if wctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				acked = append(acked, r.CID())
				if len(acked) >= 600 {
					busyOnce.Do(func() { close(busy) })
				}
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for i := uint64(8); wctx.Err() == nil; i++ {
			th, err := s.TreeHead()
			if err == nil {
				err = s.SaveCheckpoint(Checkpoint{Size: th.Size, Root: th.Root, Note: noteFor(th)})
			}
			if err == nil {
				err = s.SaveWitnessState(WitnessState{Peer: peerA.String(), Size: i, Note: []byte("note"), At: 1})
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	})
	select { // writes under way
	case <-busy:
	case <-t.Context().Done():
		t.Fatal("the writers did not get going")
	}
	mu.Lock()
	before := append([]cid.Cid(nil), acked...)
	mu.Unlock()
	var buf bytes.Buffer
	info, err := s.Backup(ctx, &buf)
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Tree.Size < uint64(len(before)) || info.Bytes != int64(buf.Len()) || info.Keys == 0 || info.Format != formatVersion {
		t.Fatalf("backup info %+v: want at least %d records, %d bytes", info, len(before), buf.Len())
	}
	if info.CheckpointSize < th.Size || info.CheckpointSize > info.Tree.Size {
		t.Fatalf("backup holds checkpoint %d; want one from %d to the log's %d", info.CheckpointSize, th.Size, info.Tree.Size)
	}
	// The backup's log is the source's, as it was.
	if root, err := s.TreeHash(info.Tree.Size); err != nil || root != info.Tree.Root {
		t.Fatalf("the source's tree of size %d: %s, %v; the backup says %s", info.Tree.Size, root, err, info.Tree.Root)
	}
	checked, err := CheckBackup(bytes.NewReader(buf.Bytes()))
	if err != nil || checked != info {
		t.Fatalf("CheckBackup = %+v, %v; want %+v", checked, err, info)
	}

	dir := filepath.Join(t.TempDir(), "data")
	restored, err := Restore(dir, bytes.NewReader(buf.Bytes()))
	if err != nil || restored != info {
		t.Fatalf("Restore = %+v, %v; want %+v", restored, err, info)
	}
	r, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, c := range before {
		if ok, err := r.Has(c); !ok || err != nil {
			t.Fatalf("record %s, acknowledged before the backup, was not restored", c)
		}
	}
	if got, err := r.TreeHead(); err != nil || got != info.Tree {
		t.Fatalf("restored tree %+v, %v; want %+v", got, err, info.Tree)
	}
	// Every record restored under its source seq (the same log, then).
	for after := uint64(0); after < info.Tree.Size; {
		page, next, err := r.List(Query{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if got, err := s.Seq(e.Record.CID()); err != nil || got != e.Seq {
				t.Fatalf("record %s: restored at seq %d, the source has it at %d (%v)", e.Record.CID(), e.Seq, got, err)
			}
		}
		if next == 0 {
			if last := page[len(page)-1].Seq; last != info.Tree.Size {
				t.Fatalf("the restored store lists records up to seq %d; want %d", last, info.Tree.Size)
			}
			break
		}
		after = next
	}
	cp, ok, err := r.LastCheckpoint()
	if err != nil || !ok || cp.Size != info.CheckpointSize || !bytes.Equal(cp.Note, noteFor(Tree{Size: cp.Size, Root: cp.Root})) {
		t.Fatalf("restored checkpoint %d %q (%v, %v); want size %d", cp.Size, cp.Note, ok, err, info.CheckpointSize)
	}
	states, err := r.WitnessStates()
	if err != nil || len(states) != 1 || states[0].Peer != peerA.String() || states[0].Size < 7 {
		t.Fatalf("restored witness states %+v, %v", states, err)
	}
	out, err := r.ListOutbox()
	if err != nil || len(out) != 1 || !out[0].Record.Equals(kept) {
		t.Fatalf("restored outbox %+v, %v; want the one entry of %s", out, err, kept)
	}
	mark, ok, err := r.Restored()
	if err != nil || !ok || mark.Size != info.Tree.Size || mark.Root != info.Tree.Root || mark.CheckpointSize != info.CheckpointSize {
		t.Fatalf("restore mark %+v, %v, %v", mark, ok, err)
	}
	// Sequences go on above the backup's: records and notices.
	if seq, err := r.PutNotice(Notice{Recipient: "p"}); err != nil || seq != 4 {
		t.Fatalf("the next notice: %d, %v; want 4", seq, err)
	}
	if res, err := r.Put(ctx, sg.consent(t, "DE")); err != nil || res.Seq != info.Tree.Size+1 {
		t.Fatalf("the next record: seq %d, %v; want %d", res.Seq, err, info.Tree.Size+1)
	}
	if err := r.ClearRestored(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := r.Restored(); ok || err != nil {
		t.Fatalf("the restore mark after ClearRestored: %v, %v", ok, err)
	}
}

// putMany puts n new consents, in batches.
func putMany(t *testing.T, s *Store, sg *signer, n int) {
	t.Helper()
	for n > 0 {
		batch := make([]*protocol.Record, min(n, 500))
		for i := range batch {
			batch[i] = sg.consent(t, "DE")
		}
		if _, err := s.PutMany(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		n -= len(batch)
	}
}

func cidsOf(rs []*protocol.Record) []cid.Cid {
	out := make([]cid.Cid, len(rs))
	for i, r := range rs {
		out[i] = r.CID()
	}
	return out
}

// TestBackupPinsItsSnapshot: commits move the discard mark on, and
// compaction then drops the versions older reads saw; while a backup
// reads at a timestamp, the versions it sees are kept.
func TestBackupPinsItsSnapshot(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{Dir: t.TempDir(), Logger: testLogger(t), MaxBatch: 64, memTableSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sg := newSigner(t)
	// The control, unpinned: compaction drops the meta key's version at
	// an old timestamp, and the tree read there is gone.
	old := putConsents(t, s, sg, 20)
	oldTs := s.readTs.Load()
	putMany(t, s, sg, 8000) // commits after it, more than a memtable
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	if got, err := s.treeAt(oldTs); err == nil && got == old {
		t.Fatal("compaction kept an unpinned snapshot: this test no longer shows what the pin does")
	}
	// Pinned: kept.
	want, err := s.TreeHead()
	if err != nil {
		t.Fatal(err)
	}
	readTs, unpin := s.pinReadTs()
	defer unpin()
	putMany(t, s, sg, 8000)
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	if got, err := s.treeAt(readTs); err != nil || got != want {
		t.Fatalf("the tree at the pinned timestamp after compaction: %+v, %v; want %+v", got, err, want)
	}
}

// TestRestoreRefusesBadInput: a backup that is not one, of another version,
// cut short anywhere, damaged or followed by bytes is refused with
// ErrBackupFormat and leaves no directory behind; a directory that holds
// something is refused with ErrRestoreTarget and left as it was.
func TestRestoreRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := openDisk(t)
	putConsents(t, s, newSigner(t), 50)
	var buf bytes.Buffer
	info, err := s.Backup(context.Background(), &buf)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	with := func(at int, b ...byte) []byte {
		out := bytes.Clone(good)
		copy(out[at:], b)
		return out
	}
	frameAt := backupHeaderLen + 8 // the first frame's body
	endAt := len(good) - 8 - 8 - 32
	cases := map[string][]byte{
		"empty":            nil,
		"not a backup":     []byte("hello, this is not an entente backup at all; it is long enough for a header........"),
		"version 2":        with(len(backupMagic), 2),
		"newer store":      with(len(backupMagic)+1, formatVersion+1),
		"header only":      good[:backupHeaderLen],
		"cut in a frame":   good[:frameAt+10],
		"cut before end":   good[:endAt],
		"cut in trailer":   good[:len(good)-5],
		"frame too long":   with(backupHeaderLen, binary.LittleEndian.AppendUint64(nil, MaxBackupFrame+1)...),
		"flipped in frame": with(frameAt+20, good[frameAt+20]^0x55),
		"flipped size":     with(len(backupMagic)+2+8+7, good[len(backupMagic)+2+8+7]^1),
		"bad checksum":     with(len(good)-1, good[len(good)-1]^1),
		"trailing byte":    append(bytes.Clone(good), 0),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			_, err := Restore(dir, bytes.NewReader(b))
			if !errors.Is(err, ErrBackupFormat) {
				t.Fatalf("Restore: %v; want ErrBackupFormat", err)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Fatalf("Restore left %d entries behind (%s)", len(entries), entries[0].Name())
			}
			_, cerr := CheckBackup(bytes.NewReader(b))
			if !errors.Is(cerr, ErrBackupFormat) && name != "flipped in frame" {
				// A byte flipped inside a frame is caught by the checksum
				// there, or by the load.
				t.Fatalf("CheckBackup: %v; want ErrBackupFormat", cerr)
			}
			// A file cut short says where it ends: its length.
			if strings.HasPrefix(name, "cut ") {
				for _, e := range []error{err, cerr} {
					if want := fmt.Sprintf("it ends at byte %d without its end marker", len(b)); !strings.Contains(e.Error(), want) {
						t.Errorf("%v; want it to say %q", e, want)
					}
				}
			}
			if strings.Count(" "+err.Error(), " store:") > 1 {
				t.Errorf("Restore: %v: says store: twice", err)
			}
		})
	}
	t.Run("not empty", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(dir, bytes.NewReader(good)); !errors.Is(err, ErrRestoreTarget) {
			t.Fatalf("Restore: %v; want ErrRestoreTarget", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("the directory now holds %d entries", len(entries))
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		dir := t.TempDir()
		got, err := Restore(dir, bytes.NewReader(good))
		if err != nil || got != info {
			t.Fatalf("Restore into an empty directory: %+v, %v", got, err)
		}
	})
}
