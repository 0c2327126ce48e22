package store

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/protocol"
)

var upgradeKills = flag.Int("upgrade-kills", 5, "rounds of TestUpgradeSurvivesKill: kill -9 during a store upgrade, reopen, check")

// upgradeChildEnv names, in the environment of the process
// TestUpgradeSurvivesKill starts, the data directory TestUpgradeChild
// opens; without it TestUpgradeChild skips itself.
const upgradeChildEnv = "ENTENTE_STORE_UPGRADE_CHILD_DIR"

// The child's stdout lines the parent waits for: the store's own log line
// at the start of an upgrade (upgrade.go), and the child's once Open has
// returned.
const (
	upgradeStartedLine = "upgrading the on-disk format"
	upgradeOpenedLine  = "upgrade child: opened"
)

// TestUpgradeChild is the process TestUpgradeSurvivesKill kills: it opens
// the store in $ENTENTE_STORE_UPGRADE_CHILD_DIR, which upgrades it, says so
// on stdout, and keeps the store open until its stdin closes.
func TestUpgradeChild(t *testing.T) {
	dir := os.Getenv(upgradeChildEnv)
	if dir == "" {
		t.Skip("the child process of TestUpgradeSurvivesKill")
	}
	// The store's Info lines on stdout: its "upgrading the on-disk format"
	// tells the parent that the upgrade has begun.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := Open(Options{Dir: dir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(upgradeOpenedLine, s.Len())
	io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeSurvivesKill runs the upgrade from format 1 in a child
// process and kills it with SIGKILL at a random moment of the upgrade,
// then checks the store as the kill left it (a copy, opened with Badger
// alone: the records rewritten are the first ones, a whole number of
// upgrade transactions, with exactly the format-1 keys of the others left
// and the meta in format 1 unless all were rewritten) and reopens the
// store itself, which must resume the upgrade and hold what it held
// before: the same tree head, records and counts, proofs that verify, no
// format-1 key, the current meta, a log that grows on as the reference
// does. A first, uncut upgrade measures how long one takes; each kill
// comes after a random delay within that time (or within the delay of an
// earlier kill that came too late). -upgrade-kills N sets the
// number of kills (5 by default; docs/security.md gives the figures of a
// run of 50). The test fails if no kill came before the upgrade was
// durable, so that it cannot pass without testing anything.
func TestUpgradeSurvivesKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("kill -9 is a Unix test")
	}
	const n = 8 * upgradeBatch // 8 upgrade transactions, the last with the meta
	rounds := *upgradeKills
	recs := manyRecords(t, n+1)
	tmp := t.TempDir()
	// A store in format 1, which each round copies and upgrades.
	format1 := filepath.Join(tmp, "format1")
	s, err := Open(Options{Dir: format1, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutMany(context.Background(), recs[:n]); err != nil {
		t.Fatal(err)
	}
	want := wantOf(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downgrade(t, format1, 1)

	// An upgrade not cut short, timed from its first log line to the end
	// of Open, in a child like the ones killed.
	dir := filepath.Join(tmp, "uncut")
	copyDir(t, format1, dir)
	c := startUpgradeChild(t, dir)
	c.wait(t, c.opened, "the end of Open")
	uncut := c.openedAt.Sub(c.startedAt)
	c.stop(t)
	if version, rewritten := upgradeProgress(t, "uncut", dir, n); version != formatVersion {
		t.Fatalf("uncut: the upgrade left format %d, %d of %d records rewritten", version, rewritten, n)
	}
	openChecked(t, "uncut", dir, want, recs[n])
	os.RemoveAll(dir)
	t.Logf("%d records: an uncut upgrade takes %v in the child", n, uncut)

	// committed[k] counts the kills that left the first k of the upgrade's
	// transactions durable, and not the last, which writes the meta.
	var committed [n / upgradeBatch]int
	var mid, unreported int
	// Kills come after a random delay within limit: the time of the uncut
	// upgrade, then the delay of any kill that came after the upgrade was
	// durable, so that the kills do not miss the upgrade round after round.
	limit := max(uncut, time.Millisecond)
	for round := range rounds {
		label := fmt.Sprintf("round %d", round)
		dir := filepath.Join(tmp, fmt.Sprintf("round%d", round))
		copyDir(t, format1, dir)
		c := startUpgradeChild(t, dir)
		c.wait(t, c.started, "the start of the upgrade")
		delay := rand.N(limit)
		select {
		case <-time.After(delay): // the moment of the kill, drawn at random
		case <-c.done:
			t.Fatalf("%s: the child exited before the kill:\n%s", label, c.output())
		}
		c.kill(t)
		if !c.reported() {
			unreported++
		}

		version, rewritten := upgradeProgress(t, label, dir, n)
		if c.reported() && version != formatVersion {
			t.Errorf("%s: the child's Open had returned, but the store it left is in format %d", label, version)
		}
		if version != formatVersion {
			mid++
			committed[rewritten/upgradeBatch]++
		} else {
			limit = max(delay, time.Millisecond)
		}
		t.Logf("%s: killed %v (%.0f%% of an uncut upgrade) after the upgrade began: format %d, %d of %d records rewritten, Open had returned: %v",
			label, delay.Round(time.Millisecond), 100*float64(delay)/float64(uncut), version, rewritten, n, c.reported())

		openChecked(t, label, dir, want, recs[n])
		os.RemoveAll(dir)
	}
	t.Logf("%d kills -9: %d before Open had returned in the child, %d before the upgrade was durable, which left 0, 1, 2 ... of its %d transactions committed %d times",
		rounds, unreported, mid, n/upgradeBatch, committed)
	if rounds > 0 && mid == 0 {
		t.Errorf("none of %d kills came before the upgrade was durable: the test tested nothing", rounds)
	}
}

// openChecked opens the store in dir, which completes an upgrade cut
// short, checks it (checkUpgraded, which puts next) and closes it.
func openChecked(t *testing.T, label, dir string, want upgradeWant, next *protocol.Record) {
	t.Helper()
	s, err := Open(Options{Dir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("%s: Open after the child: %v", label, err)
	}
	defer s.Close()
	checkUpgraded(t, label, s, want, next)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// upgradeProgress reads a copy of the store in dir, as a kill left it,
// with Badger alone, and returns the meta's format version and how many
// records the upgrade has rewritten. It checks what a kill may leave: the
// rewritten records are the first ones, in whole transactions of
// upgradeBatch; the format-1 log hashes are exactly those of the others;
// and the meta is in format 1 unless every record was rewritten.
func upgradeProgress(t *testing.T, label, dir string, n uint64) (version byte, rewritten uint64) {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy")
	copyDir(t, dir, cp)
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: cp, Logger: testLogger(t)}))
	if err != nil {
		t.Fatalf("%s: Badger cannot open the store the kill left: %v", label, err)
	}
	defer os.RemoveAll(cp)
	defer db.Close()
	txn := db.NewTransactionAt(db.MaxVersion(), false)
	defer txn.Discard()
	m, err := readMeta(txn)
	if err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	if m.seq != n {
		t.Fatalf("%s: meta seq %d, want %d", label, m.seq, n)
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixSeq}, PrefetchValues: true})
	var seq uint64
	for it.Rewind(); it.Valid(); it.Next() {
		seq++
		if !bytes.Equal(it.Item().Key(), seqKey(seq)) {
			t.Fatalf("%s: seq key %x, want seq %d", label, it.Item().Key(), seq)
		}
		var hashes []byte
		if err := it.Item().Value(func(v []byte) error {
			_, hashes, err = splitSeqValue(v)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		switch {
		case len(hashes) > 0 && rewritten == seq-1:
			rewritten = seq
		case len(hashes) > 0:
			t.Errorf("%s: seq %d rewritten, but not seq %d before it", label, seq, rewritten+1)
		}
	}
	it.Close()
	if seq != n {
		t.Fatalf("%s: %d seq keys, want %d", label, seq, n)
	}
	// The format-1 hashes left are those of the records not rewritten.
	from, to := tlog.StoredHashIndex(0, int64(rewritten)), tlog.StoredHashIndex(0, int64(n))
	it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixHashV1}})
	idx := from
	for it.Rewind(); it.Valid(); it.Next() {
		if !bytes.Equal(it.Item().Key(), hashKeyV1(idx)) {
			t.Errorf("%s: format-1 key %x, want log hash %d (hashes %d to %d left)", label, it.Item().Key(), idx, from, to-1)
			break
		}
		idx++
	}
	it.Close()
	if idx != to {
		t.Errorf("%s: format-1 hashes %d to %d left, want %d to %d", label, from, idx-1, from, to-1)
	}
	if rewritten%upgradeBatch != 0 && rewritten != n {
		t.Errorf("%s: %d records rewritten: not whole transactions of %d", label, rewritten, upgradeBatch)
	}
	if (rewritten == n) != (m.version == formatVersion) || (m.version != formatVersion && m.version != 1) {
		t.Errorf("%s: meta in format %d with %d of %d records rewritten", label, m.version, rewritten, n)
	}
	return m.version, rewritten
}

// upgradeChild is a run of TestUpgradeChild in a process of its own.
type upgradeChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	// started and opened are closed at the child's lines: the start of
	// the upgrade, the end of Open; done once its stdout is closed.
	started, opened, done chan struct{}
	startedAt, openedAt   time.Time // set before started and opened are closed

	out    syncBuffer // stdout and stderr, for failure reports
	waited bool       // cmd.Wait was called
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startUpgradeChild runs the test binary as TestUpgradeChild on dir.
func startUpgradeChild(t *testing.T, dir string) *upgradeChild {
	t.Helper()
	c := &upgradeChild{started: make(chan struct{}), opened: make(chan struct{}), done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestUpgradeChild$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), upgradeChildEnv+"="+dir)
	c.cmd.Stderr = &c.out
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.out.Write([]byte(line + "\n"))
			switch {
			case strings.Contains(line, upgradeStartedLine) && c.startedAt.IsZero():
				c.startedAt = time.Now()
				close(c.started)
			case strings.HasPrefix(line, upgradeOpenedLine) && c.openedAt.IsZero():
				c.openedAt = time.Now()
				close(c.opened)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		if !c.waited {
			c.cmd.Process.Kill()
			<-c.done
			c.cmd.Wait()
		}
	})
	return c
}

func (c *upgradeChild) output() string { return c.out.String() }

// wait waits for ch to be closed, failing if the child exits first or
// takes more than a minute.
func (c *upgradeChild) wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-c.done:
		select {
		case <-ch:
		default:
			t.Fatalf("the child exited before %s:\n%s", what, c.output())
		}
	case <-time.After(time.Minute):
		t.Fatalf("no sign of %s from the child in a minute:\n%s", what, c.output())
	}
}

// reported tells whether the child had said that Open returned.
func (c *upgradeChild) reported() bool {
	select {
	case <-c.opened:
		return true
	default:
		return false
	}
}

// kill kills the child with SIGKILL and waits for it to be gone.
func (c *upgradeChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	c.waited = true
	if err := c.cmd.Wait(); err == nil || c.cmd.ProcessState.Exited() {
		t.Fatalf("the child was not killed (%v):\n%s", err, c.output())
	}
}

// stop closes the child's stdin, which has it close the store and exit,
// and waits for it.
func (c *upgradeChild) stop(t *testing.T) {
	t.Helper()
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatalf("the child did not exit in a minute:\n%s", c.output())
	}
	c.waited = true
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("the child: %v:\n%s", err, c.output())
	}
}

// copyDir copies the files of directory src into a new directory dst,
// leaving holes where src's files hold runs of zeros: Badger's value log
// and memtable files are mostly unwritten space it preallocated.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	buf, zeros := make([]byte, 1<<20), make([]byte, 1<<20)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			t.Fatalf("copying %s: %s is not a regular file", src, e.Name())
		}
		err := func() error {
			in, err := os.Open(filepath.Join(src, e.Name()))
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.Create(filepath.Join(dst, e.Name()))
			if err != nil {
				return err
			}
			defer out.Close()
			var size int64
			for {
				k, rerr := io.ReadFull(in, buf)
				if k > 0 {
					var werr error
					if bytes.Equal(buf[:k], zeros[:k]) {
						_, werr = out.Seek(int64(k), io.SeekCurrent)
					} else {
						_, werr = out.Write(buf[:k])
					}
					if werr != nil {
						return werr
					}
					size += int64(k)
				}
				if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
					break
				}
				if rerr != nil {
					return rerr
				}
			}
			if err := out.Truncate(size); err != nil {
				return err
			}
			return out.Close()
		}()
		if err != nil {
			t.Fatalf("copying %s: %v", src, err)
		}
	}
}
