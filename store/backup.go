package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
)

// Backups: the byte format is in the package doc ("Backups").

const (
	// backupMagic opens every backup file.
	backupMagic = "entente/backup\x00"
	// backupVersion is the version of the backup format.
	backupVersion byte = 1
	// backupHeaderLen is the length of the header: the magic, the
	// version, the store format, taken_at, size, root and checkpoint.
	backupHeaderLen = len(backupMagic) + 1 + 1 + 8 + 8 + 32 + 8
	// backupEnd is the length word that ends the frames.
	backupEnd = math.MaxUint64
	// MaxBackupFrame bounds one frame of a backup: Backup writes frames
	// of about 4 MiB, Restore refuses longer than this.
	MaxBackupFrame = 256 << 20
	// backupFrameTarget is the size Backup aims its frames at: it may
	// pass it by one key-value pair.
	backupFrameTarget = 4 << 20
)

// ErrBackupFormat is wrapped by the errors of a backup file that is not
// one, is of a version or store format this build does not read, or is
// damaged or cut short.
var ErrBackupFormat = errors.New("not a valid backup")

// BackupInfo describes a backup: what its header and trailer say.
type BackupInfo struct {
	// Format is the store's on-disk format the backup holds.
	Format byte
	// TakenAt is when the backup's snapshot was taken.
	TakenAt time.Time
	// Tree is the log in the backup: its size (the records) and root.
	Tree Tree
	// CheckpointSize is the size of the last checkpoint the node had
	// signed, which the backup holds (0 for none).
	CheckpointSize uint64
	// Keys is the number of key-value pairs in the backup.
	Keys uint64
	// Bytes is the backup's length.
	Bytes int64
}

func (h *BackupInfo) marshalHeader() []byte {
	b := make([]byte, 0, backupHeaderLen)
	b = append(b, backupMagic...)
	b = append(b, backupVersion, h.Format)
	b = binary.BigEndian.AppendUint64(b, uint64(h.TakenAt.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, h.Tree.Size)
	b = append(b, h.Tree.Root[:]...)
	return binary.BigEndian.AppendUint64(b, h.CheckpointSize)
}

func (h *BackupInfo) unmarshalHeader(b []byte) error {
	if len(b) != backupHeaderLen || !bytes.HasPrefix(b, []byte(backupMagic)) {
		return fmt.Errorf("%w: it does not start with an entente backup header", ErrBackupFormat)
	}
	b = b[len(backupMagic):]
	if b[0] != backupVersion {
		return fmt.Errorf("%w: backup format version %d, this build reads version %d", ErrBackupFormat, b[0], backupVersion)
	}
	if b[1] == 0 || b[1] > formatVersion {
		return fmt.Errorf("%w: it holds a store of on-disk format %d, this build reads 1 to %d (restore it with a newer build)", ErrBackupFormat, b[1], formatVersion)
	}
	h.Format = b[1]
	h.TakenAt = time.UnixMilli(int64(binary.BigEndian.Uint64(b[2:])))
	h.Tree.Size = binary.BigEndian.Uint64(b[10:])
	copy(h.Tree.Root[:], b[18:50])
	h.CheckpointSize = binary.BigEndian.Uint64(b[50:])
	if h.CheckpointSize > h.Tree.Size || (h.Tree.Size == 0 && h.Tree.Root != (tlog.Hash{})) {
		return fmt.Errorf("%w: its header is inconsistent (log size %d, checkpoint size %d)", ErrBackupFormat, h.Tree.Size, h.CheckpointSize)
	}
	return nil
}

// Backup writes a backup of the store to w (the format is in the package
// doc) while the store runs, and returns what it wrote. The backup is one
// consistent snapshot: the records, their indexes and the log as of the
// last durable commit when it starts (every record acknowledged by then,
// none after), and the last signed checkpoint, the witness's and the
// delivery outbox's state, notices and fetched blocks as they are then.
// The checkpoint is read before the snapshot is fixed, so the log the
// backup holds always covers it. Writes go on meanwhile; compaction keeps
// the snapshot's versions until Backup returns. ctx cancels the backup:
// w then holds a backup without its end, which Restore refuses.
func (s *Store) Backup(ctx context.Context, w io.Writer) (BackupInfo, error) {
	if err := s.enter(); err != nil {
		return BackupInfo{}, err
	}
	defer s.leave()
	if s.opts.withoutLog {
		return BackupInfo{}, errors.New("store: a store without its log cannot be backed up")
	}
	// The checkpoint first: it covers a log no longer than the snapshot's.
	cp, cpOK, err := s.rawKey(checkpointKey())
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	readTs, unpin := s.pinReadTs()
	defer unpin()
	info := BackupInfo{Format: formatVersion, TakenAt: time.UnixMilli(time.Now().UnixMilli())}
	if info.Tree, err = s.treeAt(readTs); err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	if cpOK {
		var c Checkpoint
		if err := c.unmarshal(cp.Value); err != nil {
			return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
		}
		info.CheckpointSize = c.Size
	}
	bw := &backupWriter{w: w, sum: sha256.New()}
	if err := bw.write(info.marshalHeader()); err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	// The group commit's keys at the snapshot; the keys written outside
	// it at their latest (their versions rise on their own, see
	// checkpoint.go), but the checkpoint, read above.
	if err := s.writeKeys(ctx, bw, readTs, func(k []byte) bool { return !sideKey(k) && !bytes.Equal(k, checkpointKey()) }); err != nil {
		return BackupInfo{}, err
	}
	all := func([]byte) bool { return true }
	if err := s.writeKeys(ctx, bw, math.MaxUint64, all, []byte{prefixWitness}, []byte{prefixOutbox}, restoredKey()); err != nil {
		return BackupInfo{}, err
	}
	if cpOK {
		if err := bw.frame(&pb.KVList{Kv: []*pb.KV{cp}}); err != nil {
			return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
		}
	}
	info.Keys = bw.keys
	if err := bw.end(); err != nil {
		return BackupInfo{}, fmt.Errorf("store: backup: %w", err)
	}
	info.Bytes = bw.n
	s.log.Info("backup written", "records", info.Tree.Size, "keys", info.Keys, "bytes", info.Bytes,
		"checkpoint", info.CheckpointSize)
	return info, nil
}

// sideKey reports whether k is one of the keys written outside the group
// commit at versions of their own, read at the highest timestamp: the
// witness's, the outbox's and the restore mark (the checkpoint is apart).
func sideKey(k []byte) bool {
	return len(k) > 0 && (k[0] == prefixWitness || k[0] == prefixOutbox || k[0] == prefixRestored)
}

// writeKeys writes, in frames, the latest version as of readTs of every
// live key under prefixes (every key when there are none) that keep
// accepts. (Badger's Stream, which DB.Backup uses, is built for many
// cores and zeroes 32 MiB buffers per key range: seconds for a small
// store on two cores. One iterator does here.)
func (s *Store) writeKeys(ctx context.Context, bw *backupWriter, readTs uint64, keep func([]byte) bool, prefixes ...[]byte) error {
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	if len(prefixes) == 0 {
		prefixes = [][]byte{nil}
	}
	list := &pb.KVList{}
	size := 0
	flush := func() error {
		if len(list.Kv) == 0 {
			return nil
		}
		err := bw.frame(list)
		list.Kv, size = list.Kv[:0], 0
		return err
	}
	for _, prefix := range prefixes {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item() // the latest version as of readTs; deleted keys are skipped
			if !keep(item.Key()) {
				continue
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				it.Close()
				return fmt.Errorf("store: backup: key %x: %w", item.Key(), err)
			}
			list.Kv = append(list.Kv, &pb.KV{Key: item.KeyCopy(nil), Value: v, Version: item.Version(),
				UserMeta: []byte{item.UserMeta()}, ExpiresAt: item.ExpiresAt()})
			if size += len(v) + len(item.Key()) + 16; size >= backupFrameTarget {
				if err := ctx.Err(); err != nil {
					it.Close()
					return fmt.Errorf("store: backup: %w", err)
				}
				if err := flush(); err != nil {
					it.Close()
					return fmt.Errorf("store: backup: %w", err)
				}
			}
		}
		it.Close()
	}
	if err := flush(); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return ctx.Err()
}

// rawKey reads key at the highest timestamp as a backup's key-value pair.
func (s *Store) rawKey(key []byte) (*pb.KV, bool, error) {
	txn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer txn.Discard()
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, false, err
	}
	return &pb.KV{Key: bytes.Clone(key), Value: v, Version: item.Version(), UserMeta: []byte{item.UserMeta()}}, true, nil
}

// treeAt is the log's tree as of readTs.
func (s *Store) treeAt(readTs uint64) (Tree, error) {
	var t Tree
	err := s.viewAt(readTs, func(txn *badger.Txn) error {
		m, err := readMeta(txn)
		if err != nil {
			return err
		}
		t.Size = m.seq
		if t.Size == 0 {
			return nil
		}
		t.Root, err = tlog.TreeHash(int64(t.Size), txnHashReader{txn})
		return err
	})
	return t, err
}

// pinReadTs returns the read timestamp of the last durable commit and
// keeps compaction from dropping the versions visible at it (the
// discard timestamp stays at or below it) until unpin is called.
func (s *Store) pinReadTs() (readTs uint64, unpin func()) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	readTs = s.readTs.Load()
	if s.pins == nil {
		s.pins = map[uint64]int{}
	}
	s.pins[readTs]++
	return readTs, func() {
		s.pinMu.Lock()
		defer s.pinMu.Unlock()
		if s.pins[readTs]--; s.pins[readTs] == 0 {
			delete(s.pins, readTs)
		}
	}
}

// setDiscardTs lets compaction drop versions older than the latest at ts,
// but not past a pinned read timestamp.
func (s *Store) setDiscardTs(ts uint64) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	for p := range s.pins {
		ts = min(ts, p)
	}
	s.db.SetDiscardTs(ts)
}

// backupWriter writes a backup's frames, hashing and counting them.
type backupWriter struct {
	w    io.Writer
	sum  hash.Hash
	n    int64
	keys uint64
}

func (bw *backupWriter) write(b []byte) error {
	bw.sum.Write(b)
	n, err := bw.w.Write(b)
	bw.n += int64(n)
	return err
}

// frame writes list as one frame of Badger's backup stream: its length,
// 8 bytes little-endian, then its protobuf encoding.
func (bw *backupWriter) frame(list *pb.KVList) error {
	b, err := proto.Marshal(list)
	if err != nil {
		return err
	}
	if len(b) == 0 || len(b) > MaxBackupFrame {
		return fmt.Errorf("a frame of %d bytes", len(b))
	}
	if err := bw.write(binary.LittleEndian.AppendUint64(nil, uint64(len(b)))); err != nil {
		return err
	}
	bw.keys += uint64(len(list.Kv))
	return bw.write(b)
}

// end writes the end marker and the trailer: the key count and the
// SHA-256 of everything before the marker.
func (bw *backupWriter) end() error {
	digest := bw.sum.Sum(nil)
	b := binary.LittleEndian.AppendUint64(nil, backupEnd)
	b = binary.BigEndian.AppendUint64(b, bw.keys)
	b = append(b, digest...)
	n, err := bw.w.Write(b)
	bw.n += int64(n)
	return err
}
