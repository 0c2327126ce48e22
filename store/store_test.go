package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/entente-net/entente/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openDisk(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reopen closes the on-disk store s in dir and opens it again, as after a
// restart.
func reopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openMemory(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{InMemory: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testLogger logs warnings and errors (Badger's too) into the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestConformanceDisk(t *testing.T) {
	t.Parallel()
	runConformance(t, openDisk)
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	runConformance(t, openMemory)
}

func TestReopen(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *Store {
		t.Helper()
		s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := open()
	w := newWorld(t)
	w.populate(t, s)
	before, _, err := s.List(Query{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	w.checkCounts(t, s)
	for i, r := range w.records {
		got, err := s.Get(r.CID())
		if err != nil {
			t.Fatalf("record %d after reopen: %v", i, err)
		}
		mustSameRecord(t, got, r)
		if seq, err := s.Seq(r.CID()); err != nil || seq != uint64(i+1) {
			t.Fatalf("record %d after reopen: Seq = %d, %v", i, seq, err)
		}
	}
	after, _, err := s.List(Query{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("List after reopen: %d entries, before %d", len(after), len(before))
	}
	for i := range after {
		if after[i].Seq != before[i].Seq {
			t.Fatalf("List after reopen differs at %d", i)
		}
		mustSameRecord(t, after[i].Record, before[i].Record)
	}
	got, err := s.AccreditationsOf(w.platform.id)
	if err != nil {
		t.Fatal(err)
	}
	mustSameRecords(t, got, w.platformAccreditations)
	got, err = s.LinkedFrom(w.incident.CID())
	if err != nil {
		t.Fatal(err)
	}
	mustSameRecords(t, got, []*protocol.Record{w.followUp, w.incidentRevocation})

	// The seq continues, and counts keep counting.
	r := w.de.consent(t, "DE")
	n := uint64(len(w.records))
	if _, ok := s.Recent(protocol.KindConsent, 0, 10); ok {
		t.Error("Recent after reopen answers for records it never saw committed")
	}
	res, err := s.Put(ctx, r)
	if err != nil || res != (PutResult{Seq: n + 1, New: true}) {
		t.Fatalf("Put after reopen = %+v, %v; want seq %d", res, err, n+1)
	}
	if got, ok := s.Recent(protocol.KindConsent, n, 10); !ok || len(got) != 1 || got[0].Seq != n+1 || !got[0].Record.CID().Equals(r.CID()) {
		t.Errorf("Recent after reopen and a put = %v, %v; want the new consent at seq %d", got, ok, n+1)
	}
	if res, err := s.Put(ctx, w.records[0]); err != nil || res != (PutResult{Seq: 1}) {
		t.Fatalf("Put of an old record after reopen = %+v, %v; want seq 1, not new", res, err)
	}
	w.records = append(w.records, r)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open()
	defer s.Close()
	w.checkCounts(t, s)
	if lsm, vlog := s.Size(); lsm+vlog == 0 {
		t.Errorf("Size = %d, %d; want bytes on disk", lsm, vlog)
	}
}

// TestCloseStopsGoroutines shows that Close stops every goroutine Open
// started, Badger's included, whether or not anything was written.
func TestCloseStopsGoroutines(t *testing.T) {
	ctx := context.Background()
	rs := manyRecords(t, 50)
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"disk", Options{Dir: t.TempDir()}},
		{"memory", Options{InMemory: true}},
		{"disk/idle", Options{Dir: t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s, err := Open(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(tc.name, "idle") {
				if _, err := s.PutMany(ctx, rs); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Get(rs[0].CID()); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSplitBatch puts more records than one Badger transaction takes, so
// the writer must split the batch; seqs stay dense and nothing is lost.
func TestSplitBatch(t *testing.T) {
	t.Parallel()
	s, err := Open(Options{InMemory: true, MaxBatch: 1 << 20, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// An accreditation writes 7 keys (record, seq, and the kind, issuer,
	// jurisdiction, subject and sync indexes).
	n := int(s.db.MaxBatchCount()/7) + 500
	rs := manyRecords(t, n)
	res, err := s.PutMany(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r != (PutResult{Seq: uint64(i + 1), New: true}) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	st := s.WriteStats()
	if st.Requests != 1 || st.Txns < 2 {
		t.Errorf("WriteStats = %+v; want one request in two or more transactions", st)
	}
	if s.Len() != uint64(n) || s.Counts()[protocol.KindAccreditation] != int64(n) {
		t.Errorf("Len %d, counts %v; want %d", s.Len(), s.Counts(), n)
	}
	entries, next, err := s.List(Query{After: uint64(n - 3)})
	if err != nil || len(entries) != 3 || next != 0 || entries[2].Seq != uint64(n) {
		t.Fatalf("tail: %d entries, next %d, %v", len(entries), next, err)
	}
	// The transaction that did not fit was staged again from the log as it
	// was before it, not as the failed staging left it.
	if head, err := s.TreeHead(); err != nil || head.Size != uint64(n) || head.Root != referenceRoot(t, leavesInSeqOrder(t, s)) {
		t.Fatalf("tree head %d, %v; want %d records matching the reference", head.Size, err, n)
	}
}

func TestOpenChecksOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "Options.Dir"},
		{Options{InMemory: true, GCInterval: -1}, "Options.GCInterval"},
		{Options{InMemory: true, MaxBatch: -1}, "Options.MaxBatch"},
		{Options{InMemory: true, CacheBytes: -1}, "Options.CacheBytes"},
	} {
		s, err := Open(tc.opts)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", tc.opts)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v; want it to name %s", tc.opts, err, tc.want)
		}
	}
}

// TestOpenInUse: a directory another store has open is refused with
// ErrInUse, and opens once that store is closed.
func TestOpenInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(Options{Dir: dir}); !errors.Is(err, ErrInUse) {
		if err == nil {
			s2.Close()
		}
		t.Errorf("a second Open of %s: %v, want ErrInUse", dir, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	s.Close()
}

func TestOpenRefusesDamagedMeta(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), newSigner(t).consent(t, "DE")); err != nil {
		t.Fatal(err)
	}
	// Rewrite the meta as a future format version.
	ts := s.readTs.Load()
	txn := s.db.NewTransactionAt(ts, true)
	m := meta{seq: 1}
	b := m.marshal()
	b[0] = 9
	if err := txn.Set(metaKey(), b); err != nil {
		t.Fatal(err)
	}
	if err := txn.CommitAt(ts+1, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "format version 9") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open of a store in format 9: %v", err)
	}
}

func TestMetaEncoding(t *testing.T) {
	t.Parallel()
	m := meta{version: formatVersion, seq: 1<<40 + 3}
	for code := range m.counts {
		m.counts[code] = int64(code * 1000)
	}
	m.counts[0] = 0 // no kind has code 0
	var got meta
	if err := got.unmarshal(m.marshal()); err != nil || got != m {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	// A store written before a kind existed has fewer counts.
	short := m.marshal()[:1+8+8*2]
	if err := got.unmarshal(short); err != nil || got.seq != m.seq || got.counts[2] != m.counts[2] || got.counts[3] != 0 {
		t.Fatalf("short meta: %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {2}, {formatVersion, 1, 2}, append(m.marshal(), make([]byte, 8)...)} {
		if err := got.unmarshal(bad); err == nil {
			t.Errorf("unmarshal(%x) succeeded", bad)
		}
	}
}

func TestKeysSortBySeq(t *testing.T) {
	t.Parallel()
	c := newSigner(t).consent(t, "DE").CID()
	pfx := indexPrefix(prefixIssuer, []byte(peerID(t)))
	prev := indexKey(pfx, 0, c)
	for _, seq := range []uint64{1, 255, 256, 1 << 32, 1<<64 - 1} {
		k := indexKey(pfx, seq, c)
		if bytes.Compare(prev, k) >= 0 {
			t.Fatalf("key of seq %d does not sort after the previous one", seq)
		}
		gotSeq, gotCID, err := parseIndexKey(k[len(pfx):])
		if err != nil || gotSeq != seq || !gotCID.Equals(c) {
			t.Fatalf("parseIndexKey = %d, %s, %v", gotSeq, gotCID, err)
		}
		prev = k
	}
	// A field that is a prefix of another does not share its key prefix.
	if bytes.HasPrefix(indexPrefix(prefixJurisdiction, []byte("DEU")), indexPrefix(prefixJurisdiction, []byte("DE"))) {
		t.Error("index prefixes of DE and DEU overlap")
	}
}

func TestCacheEvicts(t *testing.T) {
	t.Parallel()
	rs := manyRecords(t, 10)
	c := newRecordCache(3 * recordCost(rs[0]))
	for _, r := range rs[:3] {
		c.add(r)
	}
	if _, ok := c.get(rs[0].CID()); !ok { // rs[0] becomes most recent
		t.Fatal("record 0 not cached")
	}
	c.add(rs[3]) // evicts rs[1], the least recently used
	if _, ok := c.get(rs[1].CID()); ok {
		t.Error("record 1 survived eviction")
	}
	for _, i := range []int{0, 2, 3} {
		if r, ok := c.get(rs[i].CID()); !ok || r != rs[i] {
			t.Errorf("record %d not cached", i)
		}
	}
	for _, r := range rs {
		c.add(r)
	}
	if c.len() != 3 || c.bytes > c.maxBytes {
		t.Errorf("cache holds %d records, %d bytes; want 3, at most %d", c.len(), c.bytes, c.maxBytes)
	}
}

func TestBadgerLogsGoToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := badgerLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Infof("All %d tables opened\n", 3)
	l.Errorf("disk %s", "full")
	out := buf.String()
	for _, want := range []string{`level=DEBUG msg="All 3 tables opened" component=badger`, `level=ERROR msg="disk full" component=badger`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}

	// Open and Close write Badger's routine lines at debug level, and
	// nothing to stderr.
	buf.Reset()
	s, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !strings.Contains(buf.String(), "component=badger") {
		t.Errorf("no Badger lines in the debug log:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), "level=WARN") || strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("warnings on a clean open and close:\n%s", buf.String())
	}
}

func TestSizeCountsFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.PutMany(context.Background(), manyRecords(t, 200)); err != nil {
		t.Fatal(err)
	}
	_, vlog := s.Size()
	if vlog == 0 {
		t.Error("no log bytes after 200 synced records")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var apparent int64
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext == ".vlog" || ext == ".mem" {
			info, _ := e.Info()
			apparent += info.Size()
		}
	}
	if vlog > apparent {
		t.Errorf("log bytes %d over the files' length %d", vlog, apparent)
	}
	t.Logf("log: %d bytes allocated, %d apparent", vlog, apparent)
}

// TestIndexKeysLayout pins the key layout that doc.go documents: it is the
// on-disk format.
func TestIndexKeysLayout(t *testing.T) {
	t.Parallel()
	platform, de := newSigner(t), newSigner(t)
	acc := de.accreditation(t, platform.id, "DE")
	rev := platform.revocation(t, acc.CID())
	seq := []byte{0, 0, 0, 0, 0, 0, 1, 2} // 258
	cat := func(parts ...[]byte) string { return string(bytes.Join(parts, nil)) }
	lenOf := func(b []byte) []byte { return []byte{byte(len(b))} }
	issued := func(r *protocol.Record) []byte { return binary.BigEndian.AppendUint64(nil, uint64(r.IssuedAt())) }

	if n := len([]byte(de.id)); n != 0x26 {
		t.Errorf("an Ed25519 peer ID is %d bytes; doc.go says 38", n)
	}
	if n := len(acc.CID().Bytes()); n != 36 {
		t.Errorf("a record ID is %d bytes; doc.go says 36", n)
	}
	for _, tc := range []struct {
		r    *protocol.Record
		want []string
	}{
		{acc, []string{
			cat([]byte("k"), []byte{1}, seq, acc.CID().Bytes()),
			cat([]byte("i"), lenOf([]byte(de.id)), []byte(de.id), seq, acc.CID().Bytes()),
			cat([]byte("j"), []byte{2}, []byte("DE"), seq, acc.CID().Bytes()),
			cat([]byte("a"), lenOf([]byte(platform.id)), []byte(platform.id), seq, acc.CID().Bytes()),
			cat([]byte("y"), issued(acc), acc.CID().Bytes()),
		}},
		{rev, []string{
			cat([]byte("k"), []byte{4}, seq, rev.CID().Bytes()),
			cat([]byte("i"), lenOf([]byte(platform.id)), []byte(platform.id), seq, rev.CID().Bytes()),
			cat([]byte("y"), issued(rev), rev.CID().Bytes()),
			cat([]byte("l"), lenOf(acc.CID().Bytes()), acc.CID().Bytes(), []byte{4}, seq, rev.CID().Bytes()),
		}},
	} {
		keys, err := indexKeys(tc.r, 258, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range keys {
			got = append(got, string(k))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: index keys\n%q\nwant\n%q", tc.r.Kind(), got, tc.want)
		}
	}
	if got, want := string(recordKey(acc.CID())), "r"+string(acc.CID().Bytes()); got != want {
		t.Errorf("record key %x, want %x", got, want)
	}
	if got, want := string(recordValue(258, acc)), cat(seq, acc.Bytes()); got != want {
		t.Errorf("record value %x, want %x", got, want)
	}
	if got, want := string(seqKey(258)), cat([]byte("s"), seq); got != want {
		t.Errorf("seq key %x, want %x", got, want)
	}
}

// TestGCLoop runs value-log GC often while records are written; it must
// neither fail nor outlive Close.
func TestGCLoop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var logs bytes.Buffer
	s, err := Open(Options{
		Dir:        t.TempDir(),
		GCInterval: time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := manyRecords(t, 300)
	for i := 0; i < len(rs); i += 10 {
		if _, err := s.PutMany(context.Background(), rs[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.Len() > 0 {
		t.Errorf("warnings while collecting garbage:\n%s", logs.String())
	}
}
