package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrRestoreTarget is wrapped by Restore's error when the directory to
// restore into already holds something.
var ErrRestoreTarget = errors.New("store: the directory to restore into is not empty")

// Restore makes dir, which must not exist or be empty, the data directory
// of the store a backup r holds (Backup), and returns what it restored.
// It loads the backup into a new directory beside dir, opens it as a
// store and checks it against the backup's header and trailer — the
// checksum, every key, every record under its seq, the log's tree and the
// last signed checkpoint — and only then renames it to dir. On any error
// dir is left as it was. The restored store carries a Restoration mark
// (Restored), which the node reads at start.
func Restore(dir string, r io.Reader) (BackupInfo, error) {
	if err := checkRestoreTarget(dir); err != nil {
		return BackupInfo{}, err
	}
	br, info, err := openBackup(r)
	if err != nil {
		return BackupInfo{}, err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".restoring-*")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if err := load(tmp, br); err != nil {
		return BackupInfo{}, err
	}
	info.Keys, info.Bytes = br.keys, br.n
	if err := checkRestored(tmp, info); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) { // empty, checked above
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return BackupInfo{}, fmt.Errorf("store: restore: %w", err)
	}
	done = true
	if err := syncDir(parent); err != nil {
		return info, fmt.Errorf("store: restore: sync %s: %w", parent, err)
	}
	return info, nil
}

// CheckBackup reads a whole backup and checks its framing and checksum
// without loading it, and returns what its header and trailer say.
func CheckBackup(r io.Reader) (BackupInfo, error) {
	br, info, err := openBackup(r)
	if err != nil {
		return BackupInfo{}, err
	}
	for {
		word, body, err := br.next()
		if err != nil {
			return BackupInfo{}, err
		}
		if word == nil {
			break
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return BackupInfo{}, br.short(err)
		}
	}
	if err := br.finish(); err != nil {
		return BackupInfo{}, err
	}
	info.Keys, info.Bytes = br.keys, br.n
	return info, nil
}

func checkRestoreTarget(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: no directory given", ErrRestoreTarget)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("store: restore into %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%w: %s holds %d entries", ErrRestoreTarget, dir, len(entries))
	}
	return nil
}

// load loads the frames of br into a new Badger directory dir.
func load(dir string, br *backupReader) (err error) {
	db, err := badger.OpenManaged(badgerOptions(Options{Dir: dir, Logger: discardLogger()}))
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: restore: %w", cerr)
		}
	}()
	pr, pw := io.Pipe()
	loaded := make(chan error, 1)
	go func() {
		err := db.Load(pr, 16)
		pr.CloseWithError(err) // a Load that stopped early stops the writes below
		loaded <- err
	}()
	feed := func() error {
		for {
			word, body, err := br.next()
			if err != nil {
				return err
			}
			if word == nil {
				return nil
			}
			if _, err := pw.Write(word); err != nil {
				return err
			}
			if _, err := io.Copy(pw, body); err != nil {
				return err
			}
			if body.N > 0 {
				return br.short(io.ErrUnexpectedEOF)
			}
		}
	}
	ferr := feed()
	pw.CloseWithError(ferr) // nil: Load reads to the end
	lerr := <-loaded
	switch {
	case ferr != nil && errors.Is(ferr, ErrBackupFormat):
		return fmt.Errorf("store: restore: %w", ferr)
	case lerr != nil && isDiskError(lerr):
		return fmt.Errorf("store: restore: loading the backup: %w", lerr)
	case lerr != nil:
		// Load refused the frames' contents: damaged.
		return fmt.Errorf("store: restore: %w: loading it: %v", ErrBackupFormat, lerr)
	case ferr != nil:
		return fmt.Errorf("store: restore: %w", ferr)
	}
	if err := br.finish(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return nil
}

// checkRestored opens the store loaded in dir and checks it against the
// backup: every key, every record, the log and the checkpoint; then it
// leaves the Restoration mark.
func checkRestored(dir string, info BackupInfo) (err error) {
	s, err := Open(Options{Dir: dir, Logger: discardLogger()})
	if err != nil {
		return fmt.Errorf("store: restore: opening the restored store: %w", err)
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: restore: %w", cerr)
		}
	}()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("store: restore: %w: %s", ErrBackupFormat, fmt.Sprintf(format, args...))
	}
	keys, err := s.checkKeys()
	if err != nil {
		return bad("%v", err)
	}
	if keys != info.Keys {
		return bad("%d keys loaded, the backup says %d", keys, info.Keys)
	}
	tree, err := s.TreeHead()
	if err != nil {
		return bad("its log: %v", err)
	}
	if tree != info.Tree {
		return bad("its log has %d records and root %s, its header says %d and %s", tree.Size, tree.Root, info.Tree.Size, info.Tree.Root)
	}
	cp, ok, err := s.LastCheckpoint()
	switch {
	case err != nil:
		return bad("%v", err)
	case ok != (info.CheckpointSize > 0) || cp.Size != info.CheckpointSize:
		return bad("it holds a checkpoint of size %d, its header says %d", cp.Size, info.CheckpointSize)
	}
	return s.markRestored(Restoration{At: time.Now().UnixMilli(), TakenAt: info.TakenAt.UnixMilli(),
		Size: info.Tree.Size, Root: info.Tree.Root, CheckpointSize: info.CheckpointSize})
}

// checkKeys counts the live keys and checks that every seq up to Len
// names a record held under that seq.
func (s *Store) checkKeys() (uint64, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{})
	defer it.Close()
	var keys, seqs uint64
	for it.Rewind(); it.Valid(); it.Next() {
		keys++
		k := it.Item().Key()
		if k[0] != prefixSeq {
			continue
		}
		if len(k) != 1+seqLen || binary.BigEndian.Uint64(k[1:]) != seqs+1 {
			return 0, fmt.Errorf("seq key %x out of order after seq %d", k, seqs)
		}
		seqs++
		err := it.Item().Value(func(v []byte) error {
			c, _, err := splitSeqValue(v)
			if err != nil {
				return err
			}
			item, err := txn.Get(recordKey(c))
			if err != nil {
				return fmt.Errorf("record %s: %w", c, err)
			}
			return item.Value(func(rv []byte) error {
				seq, _, err := splitRecordValue(rv)
				if err == nil && seq != seqs {
					err = fmt.Errorf("record %s has seq %d, not %d", c, seq, seqs)
				}
				return err
			})
		})
		if err != nil {
			return 0, fmt.Errorf("seq %d: %w", seqs, err)
		}
	}
	if seqs != s.Len() {
		return 0, fmt.Errorf("%d seq keys for %d records", seqs, s.Len())
	}
	return keys, nil
}

// backupReader reads a backup's frames, hashing what it reads.
type backupReader struct {
	r    *bufio.Reader
	file *countingReader // under r: at its end, the file's length
	sum  hash.Hash
	n    int64 // the backup's bytes, as far as the frames read say
	keys uint64
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openBackup reads and checks a backup's header.
func openBackup(r io.Reader) (*backupReader, BackupInfo, error) {
	file := &countingReader{r: r}
	br := &backupReader{r: bufio.NewReaderSize(file, 64<<10), file: file, sum: sha256.New()}
	head := make([]byte, backupHeaderLen)
	if _, err := io.ReadFull(br.r, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, BackupInfo{}, fmt.Errorf("%w: %d bytes, shorter than a backup header (%d)", ErrBackupFormat, file.n, len(head))
		}
		return nil, BackupInfo{}, fmt.Errorf("store: reading the backup: %w", err)
	}
	var info BackupInfo
	if err := info.unmarshalHeader(head); err != nil {
		return nil, BackupInfo{}, err
	}
	br.sum.Write(head)
	br.n = int64(len(head))
	return br, info, nil
}

// next returns the next frame's length word and a reader of its body
// (which the caller reads to the end), or a nil word at the end marker.
func (br *backupReader) next() ([]byte, *io.LimitedReader, error) {
	word := make([]byte, 8)
	if _, err := io.ReadFull(br.r, word); err != nil {
		return nil, nil, br.short(err)
	}
	br.n += 8
	n := binary.LittleEndian.Uint64(word)
	if n == backupEnd {
		return nil, nil, nil
	}
	if n == 0 || n > MaxBackupFrame {
		return nil, nil, fmt.Errorf("%w: a frame of %d bytes at byte %d (1 to %d)", ErrBackupFormat, n, br.n-8, MaxBackupFrame)
	}
	br.sum.Write(word)
	br.n += int64(n)
	return word, &io.LimitedReader{R: io.TeeReader(br.r, br.sum), N: int64(n)}, nil
}

// short is the error of a backup that ends early.
func (br *backupReader) short(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// At the end of the file, everything under the buffer was read.
		return fmt.Errorf("%w: it ends at byte %d without its end marker (cut short?)", ErrBackupFormat, br.file.n)
	}
	return fmt.Errorf("store: reading the backup: %w", err)
}

// finish reads the trailer after the end marker, checks the checksum and
// that nothing follows.
func (br *backupReader) finish() error {
	digest := br.sum.Sum(nil)
	trailer := make([]byte, 8+sha256.Size)
	if _, err := io.ReadFull(br.r, trailer); err != nil {
		return br.short(err)
	}
	br.n += int64(len(trailer))
	if !bytes.Equal(trailer[8:], digest) {
		return fmt.Errorf("%w: its checksum does not match its contents (the file is damaged)", ErrBackupFormat)
	}
	if _, err := br.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: bytes after its end", ErrBackupFormat)
	}
	br.keys = binary.BigEndian.Uint64(trailer)
	return nil
}

// The restore mark: one key, written outside the group commit like the
// checkpoint (a version one above its last, synchronously), read at the
// highest timestamp:
//
//	R -> JSON Restoration
const prefixRestored byte = 'R'

var restoredMu sync.Mutex

func restoredKey() []byte { return []byte{prefixRestored} }

// Restoration is the mark Restore leaves in the store it makes, until
// the node clears it (ClearRestored): a node restored from a backup signs
// no checkpoint before it knows the largest of its own checkpoints its
// peers hold (DESIGN.md §6, "Restoring a node").
type Restoration struct {
	At             int64     `json:"at"`       // when it was restored, Unix ms
	TakenAt        int64     `json:"taken_at"` // when the backup was taken, Unix ms
	Size           uint64    `json:"size"`     // the log's size in the backup
	Root           tlog.Hash `json:"root"`
	CheckpointSize uint64    `json:"checkpoint_size"` // the last signed checkpoint's in the backup
}

// Restored returns the store's restore mark; ok is false when it has none.
func (s *Store) Restored() (r Restoration, ok bool, err error) {
	if err := s.enter(); err != nil {
		return r, false, err
	}
	defer s.leave()
	kv, ok, err := s.rawKey(restoredKey())
	if err != nil || !ok {
		return r, false, err
	}
	if err := json.Unmarshal(kv.Value, &r); err != nil {
		return r, false, fmt.Errorf("store: the restore mark: %w", err)
	}
	return r, true, nil
}

// ClearRestored removes the restore mark, durably.
func (s *Store) ClearRestored() error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.writeRestored(nil)
}

func (s *Store) markRestored(r Restoration) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.writeRestored(v)
}

// writeRestored sets the mark to v, or deletes it for nil v.
func (s *Store) writeRestored(v []byte) error {
	restoredMu.Lock()
	defer restoredMu.Unlock()
	var version uint64
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	item, err := rtxn.Get(restoredKey())
	switch {
	case err == nil:
		version = item.Version()
	case errors.Is(err, badger.ErrKeyNotFound):
		if v == nil {
			rtxn.Discard()
			return nil
		}
	default:
		rtxn.Discard()
		return fmt.Errorf("store: the restore mark: %w", err)
	}
	rtxn.Discard()
	txn := s.db.NewTransactionAt(version, true)
	defer txn.Discard()
	if v == nil {
		err = txn.Delete(restoredKey())
	} else {
		err = txn.Set(restoredKey(), v)
	}
	if err != nil {
		return fmt.Errorf("store: the restore mark: %w", err)
	}
	// A nil callback makes CommitAt wait for the (synced) write.
	if err := txn.CommitAt(version+1, nil); err != nil {
		return fmt.Errorf("store: the restore mark: %w", err)
	}
	return nil
}

// isDiskError reports whether err is the file system's rather than the
// backup's.
func isDiskError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
