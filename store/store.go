package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/entente-net/entente/protocol"
)

var (
	// ErrNotFound is returned for a record the store does not hold.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidQuery wraps what is wrong with a Query passed to List.
	ErrInvalidQuery = errors.New("store: invalid query")
	// ErrOldReceipts is returned by Open for a data directory written
	// before protocol revision 2, whose receipts this build cannot read
	// (docs/operating.md, "Upgrading a data directory").
	ErrOldReceipts = errors.New("store: receipts of an earlier protocol revision")
)

// Defaults for the zero fields of Options.
const (
	DefaultGCInterval = 5 * time.Minute
	DefaultMaxBatch   = 1024
	DefaultCacheBytes = 32 << 20
)

// Options configure Open. A zero field means its documented default.
type Options struct {
	// Dir is the on-disk directory, created if missing. Ignored when
	// InMemory.
	Dir string
	// InMemory keeps everything in memory, for tests and throwaway nodes.
	InMemory bool
	// Logger receives the store's and Badger's logs; nil discards them.
	Logger *slog.Logger
	// GCInterval is the period of value-log garbage collection; 0 means
	// DefaultGCInterval.
	GCInterval time.Duration
	// MaxBatch is the most records written in one group commit; 0 means
	// DefaultMaxBatch.
	MaxBatch int
	// CacheBytes bounds the cache of decoded records (an estimate of the
	// memory they hold); 0 means DefaultCacheBytes.
	CacheBytes int64
	// OnCommit, if set, is called with the records each commit made new,
	// in commit order, once they are durable and visible to readers and
	// before the puts that wrote them return. It runs on the goroutine
	// that acknowledges puts, so it must return quickly, and must not call
	// the store's write methods. The slice is the callee's to keep.
	OnCommit func(fresh []*protocol.Record)

	// withoutLog skips the Merkle log, for the benchmark that measures
	// what the log costs; nothing else may set it.
	withoutLog bool
	// recentRecords is how many committed records the writer remembers
	// (see Absence); 0 means defaultRecentRecords. Tests set it low.
	recentRecords int
	// memTableSize, when set, replaces the memtables' size (and lowers
	// the value threshold to fit, and compacts level 0 from its first
	// table): tests set it low to have Badger flush and compact soon.
	memTableSize int64
}

func (o *Options) check() error {
	switch {
	case !o.InMemory && o.Dir == "":
		return errors.New("store: Options.Dir is empty (set it, or set InMemory)")
	case o.GCInterval < 0:
		return fmt.Errorf("store: Options.GCInterval is negative (%s)", o.GCInterval)
	case o.MaxBatch < 0:
		return fmt.Errorf("store: Options.MaxBatch is negative (%d)", o.MaxBatch)
	case o.CacheBytes < 0:
		return fmt.Errorf("store: Options.CacheBytes is negative (%d)", o.CacheBytes)
	}
	return nil
}

// Store holds records in Badger with the indexes the node queries. It is
// safe for concurrent use. See the package documentation for the key
// layout and the write path.
type Store struct {
	db    *badger.DB
	log   *slog.Logger
	opts  Options
	cache *recordCache
	scans *scanCache         // answers of the index scans authorisation makes
	tails [numKindCodes]tail // the latest records of each kind (Recent)

	// lifecycle: every method runs between enter and leave; Close sets
	// closed, waits for the methods in flight, then stops the goroutines.
	mu     sync.RWMutex
	closed bool
	ops    sync.WaitGroup
	quit   chan struct{} // closed by Close: stop waiting to enqueue, stop GC

	// group commit (write.go)
	queue      chan *putRequest
	stopWriter chan struct{} // closed once no Put can enqueue any more
	writerDone chan struct{}
	gcDone     chan struct{}
	failMu     sync.Mutex
	writeErr   error // set after a failed commit (fail, failed)
	stats      struct{ requests, txns, written atomic.Uint64 }

	// state mirrored from the meta key, updated after each commit
	seq atomic.Uint64
	// readTs is the Badger timestamp of the last durable commit: reads
	// see everything acknowledged, and nothing that is not yet durable.
	readTs atomic.Uint64
	counts [numKindCodes]atomic.Int64
	// evidenceEpoch counts the commits that made visible a record other
	// than a receipt (EvidenceEpoch).
	evidenceEpoch atomic.Uint64
	// treeHead is the log's tree at a readTs: the writer's at each commit.
	treeHead atomic.Pointer[treeAt]
	// held filters the lookups of records not held (filter.go).
	held *heldFilter
	// pins are the read timestamps backups read at, with how many read
	// at each: compaction keeps their versions (backup.go).
	pinMu sync.Mutex
	pins  map[uint64]int

	closeOnce sync.Once
	closeErr  error
}

// ErrInUse is Open's error for a data directory another process has open.
var ErrInUse = errors.New("another process has this data directory open")

// Open opens (creating if needed) the store in opts.Dir, or an in-memory
// store, and starts its writer and value-log GC goroutines. Close stops
// them.
func Open(opts Options) (*Store, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.GCInterval == 0 {
		opts.GCInterval = DefaultGCInterval
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	// Managed mode: the store, not Badger, assigns transaction timestamps.
	// With one writer that is trivial, and it spares readers Badger's wait
	// for in-flight commits (a read in unmanaged mode blocks until every
	// commit before it, fsync included, is done, which would make every
	// ingest's lookups queue behind the group commit's fsync).
	db, err := badger.OpenManaged(badgerOptions(opts))
	// Badger's lock on the directory; its error wraps nothing
	// (TestOpenInUse notices if its words change).
	if err != nil && strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return nil, fmt.Errorf("store: open %s: %w", describe(opts), ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", describe(opts), err)
	}
	s := &Store{
		db:         db,
		log:        opts.Logger,
		opts:       opts,
		cache:      newRecordCache(opts.CacheBytes),
		scans:      newScanCache(),
		quit:       make(chan struct{}),
		queue:      make(chan *putRequest, opts.MaxBatch),
		stopWriter: make(chan struct{}),
		writerDone: make(chan struct{}),
		gcDone:     make(chan struct{}),
	}
	s.readTs.Store(db.MaxVersion())
	if err := s.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	edge, err := s.loadLog()
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadFilter(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: reading the record keys: %w", err)
	}
	go s.writeLoop(edge)
	go s.gcLoop()
	s.log.Debug("store opened", "dir", describe(opts), "records", s.seq.Load())
	return s, nil
}

func describe(opts Options) string {
	if opts.InMemory {
		return "(in memory)"
	}
	return opts.Dir
}

// badgerOptions sizes Badger for a daemon of small records (at most 64
// KiB, typically under 1 KiB): values stay in the LSM tree (Badger's
// default ValueThreshold; in the value log, they cost ingest more at 10^5
// records than they saved at 10^6), and the value log is, in effect, only
// a write-ahead log.
// Memtables of 64 MiB, tables of 8 MiB and a first level of 64 MiB
// (Badger's are 64, 2 and 10 MiB; ours were 16, 2 and 10) flush and
// compact less often as the store grows: ingest from 5 to 10 x 10^5
// records went from 6 000 to 7 900 records/s (docs/performance.md).
// Memory: three memtables and a 32 MiB block cache instead of Badger's
// five and 256 MiB; an in-memory store keeps 16 MiB memtables.
func badgerOptions(opts Options) badger.Options {
	dir, memtable := opts.Dir, int64(64<<20)
	if opts.InMemory {
		dir, memtable = "", 16<<20
	}
	if opts.memTableSize > 0 {
		memtable = opts.memTableSize
	}
	o := badger.DefaultOptions(dir).
		WithInMemory(opts.InMemory).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(true).
		// One goroutine writes (the group-commit writer), so Badger's
		// conflict detection has nothing to find.
		WithDetectConflicts(false).
		// Badger's metrics are process-global expvars; entente exports
		// its own.
		WithMetricsEnabled(false).
		WithMemTableSize(memtable).
		WithNumMemtables(3).
		WithBaseTableSize(8 << 20).
		WithBaseLevelSize(64 << 20).
		WithBlockCacheSize(32 << 20).
		WithNumCompactors(2).
		WithValueLogFileSize(64 << 20).
		WithCompression(options.Snappy)
	if opts.memTableSize > 0 {
		// A batch must hold a value of the threshold: keep it below 15 %
		// of the memtable (Badger's batch bound), far above our records.
		o = o.WithValueThreshold(opts.memTableSize / 16).WithNumLevelZeroTables(1)
	}
	return o
}

// view runs fn in a read-only transaction at the last durable commit.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	return s.viewAt(s.readTs.Load(), fn)
}

// viewAt is view at a read timestamp the caller loaded.
func (s *Store) viewAt(readTs uint64, fn func(txn *badger.Txn) error) error {
	txn := s.db.NewTransactionAt(readTs, false)
	defer txn.Discard()
	return fn(txn)
}

// loadMeta restores the seq counter and the per-kind counts, and checks
// them against the highest seq key.
func (s *Store) loadMeta() error {
	var m meta
	var lastSeq uint64
	err := s.view(func(txn *badger.Txn) (err error) {
		if m, err = readMeta(txn); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixSeq}})
		defer it.Close()
		// In reverse, Seek finds the last key at or before its argument.
		it.Seek([]byte{prefixSeq, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		if it.Valid() {
			k := it.Item().Key()
			if len(k) != 1+seqLen {
				return fmt.Errorf("store: seq key of %d bytes", len(k))
			}
			lastSeq = binary.BigEndian.Uint64(k[1:])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: load meta: %w", err)
	}
	if lastSeq != m.seq {
		return fmt.Errorf("store: meta says %d records but the highest seq is %d: the store is damaged", m.seq, lastSeq)
	}
	if m.version != 0 && m.version < formatVersion { // 0: an empty store, which has no meta key
		if n := m.counts[receiptCode]; n > 0 && m.version < 3 {
			return fmt.Errorf("%w: the data directory holds %d receipts of one decision each (format %d, before protocol revision 2), which this build cannot read", ErrOldReceipts, n, m.version)
		}
		if err := s.upgrade(m); err != nil {
			return fmt.Errorf("store: upgrading from format %d: %w", m.version, err)
		}
	}
	s.seq.Store(m.seq)
	for code := range m.counts {
		s.counts[code].Store(m.counts[code])
		s.tails[code].from = m.seq // Recent knows nothing older
	}
	return nil
}

// loadLog reads the right edge of the log, for the writer, and sets the
// tree head.
func (s *Store) loadLog() (edge frontier, err error) {
	readTs := s.readTs.Load()
	err = s.viewAt(readTs, func(txn *badger.Txn) (err error) {
		edge, err = loadFrontier(txnHashReader{txn}, int64(s.seq.Load()))
		return err
	})
	if err != nil {
		return edge, fmt.Errorf("store: reading the log: %w", err)
	}
	t, err := edge.tree()
	if err != nil {
		return edge, fmt.Errorf("store: reading the log: %w", err)
	}
	s.treeHead.Store(&treeAt{readTs: readTs, tree: t})
	return edge, nil
}

// enter admits a method call unless the store is closed; leave ends it.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.ops.Add(1)
	return nil
}

func (s *Store) leave() { s.ops.Done() }

// Close stops the store: calls made after it return ErrClosed, calls in
// flight finish (a Put waiting to enqueue returns ErrClosed; one already
// enqueued is written and acknowledged), then the writer and the GC loop
// stop and Badger closes. Close is idempotent; every call returns the
// result of the first.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
		s.ops.Wait()
		// No Put is in flight and none can start: what is queued now is
		// all the writer will ever see.
		close(s.stopWriter)
		<-s.writerDone
		<-s.gcDone
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
		s.log.Debug("store closed", "dir", describe(s.opts))
	})
	return s.closeErr
}

// gcLoop runs value-log GC every GCInterval until Close.
func (s *Store) gcLoop() {
	defer close(s.gcDone)
	if s.opts.InMemory {
		return // there is no value log
	}
	t := time.NewTicker(s.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
			s.collectGarbage()
		}
	}
}

// collectGarbage rewrites value-log files while Badger finds one worth
// rewriting (at least half stale).
func (s *Store) collectGarbage() {
	for rewrites := 0; ; rewrites++ {
		select {
		case <-s.quit:
			return
		default:
		}
		err := s.db.RunValueLogGC(0.5)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			s.log.Warn("value-log GC failed", "err", err)
		}
		if rewrites > 0 {
			s.log.Debug("value-log GC", "rewrites", rewrites)
		}
		return
	}
}
