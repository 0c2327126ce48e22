// Package store keeps a node's records in Badger, with the indexes the
// node queries: by kind, issuer and jurisdiction in acceptance order,
// accreditations by subject, and backlinks from a record to the records
// that link to it. Badger is this package's alone: none of its types or
// errors cross the API.
//
// # Acceptance order
//
// Every record the store accepts gets a seq: 1 for the first, and one more
// for each record after, with no gaps. Seqs order List and the
// AccreditationsOf and LinkedFrom results; Len is the highest seq.
// Putting a record the store holds changes nothing and returns its seq.
//
// # Write path
//
// Put and PutMany hand records to one writer goroutine through a bounded
// queue. The writer takes whatever is queued (up to Options.MaxBatch
// records), assigns seqs in queue order, stages the records, their indexes
// and the meta key in one Badger transaction, and starts its commit
// (SyncWrites: the commit is durable when Badger reports it done). It does
// not wait: while Badger writes and syncs, the writer stages the next
// batch (up to a few commits ahead), and Badger syncs the commits waiting
// for it together. A second goroutine, the acker, takes the commits in
// order; once one is durable it makes it visible to readers and
// acknowledges its callers. A Put therefore returns only once its record
// is durable, and concurrent callers share fsyncs.
//
// Reads never wait for a commit in flight: the store runs Badger in
// managed mode and reads at the timestamp of the last durable commit, so
// a reader sees every acknowledged record and nothing that is not yet
// durable. (In Badger's own mode a read waits for every commit started
// before it, fsync included, which made every ingest queue behind the
// group commit.) A record whose commit is in flight is answered from the
// writer's own table, and its duplicate is acknowledged after it.
//
// If a batch does not fit in one transaction, it is split and committed in
// parts. If a commit fails, the store refuses further writes until it is
// reopened, since whether the failed commit reached the disk is unknown.
//
// # Keys
//
// Every key starts with a one-byte prefix. seq is 8 bytes big-endian, so
// keys sort in acceptance order; cid is a binary CID (36 bytes for a
// record ID: 0x01 0x71 0x12 0x20 and the SHA-256); n is one byte giving
// the length of the field after it, so that no field value is a key
// prefix of another.
//
//	r | cid                           -> seq | record bytes (canonical DAG-CBOR)
//	s | seq                           -> cid | the log hashes its leaf adds (log.go)
//	k | kind | seq | cid              -> (empty)  records by kind
//	i | n | issuer | seq | cid        -> (empty)  records by issuer (binary peer ID)
//	j | n | jurisdiction | seq | cid  -> (empty)  records by jurisdiction ("DE")
//	a | n | subject | seq | cid       -> (empty)  accreditations by subject (binary peer ID)
//	x | n | peer | seq | cid          -> (empty)  incident notices by affected party (binary peer ID)
//	y | issued_at | cid               -> (empty)  the sync set (Syncable), by issued_at (8 bytes)
//	l | n | target | kind | seq | cid -> (empty)  backlinks: cid links to target
//	                                              (a receipt: to its decisions' consents)
//	b | cid                           -> block bytes  a receipt's decision blocks (PutReceipt)
//	m                                 -> meta
//	c                                 -> the last signed checkpoint (checkpoint.go)
//	w | ...                           -> what the witness learned of peers (witness.go)
//	o | cid | n | peer                -> JSON  the direct delivery of a record to a node:
//	                                              pending or acknowledged (outbox.go)
//	R                                 -> JSON  the restore mark (restore.go)
//
// The r key maps a CID both to the record and to its seq: one key fewer
// per record than separate record and CID-to-seq keys, and Badger's cost
// per write is mostly per key. Index values are empty and the CID ends the
// key, so walking an index reads no values.
//
// kind is a one-byte code: 1 accreditation, 2 ruleset, 3 consent,
// 4 revocation, 5 incident, 6 receipt. Records whose kind names no
// jurisdiction (revocation, receipt) have no j key. Backlinks are split by
// the linking record's kind so that a revocation check does not read the
// receipts that cite the same consent.
//
// For example, the kind-index key of the 5th record, a consent with CID
// bafyrei..., is 'k' 0x03 00 00 00 00 00 00 00 05 01 71 12 20 <32-byte
// SHA-256>; its issuer key is 'i' 0x26 <38-byte peer ID> 00 .. 05 <cid>.
//
// The log has no keys of its own: each leaf's stored hashes (32 bytes
// each, 1 + the number of trailing ones of seq−1 of them, 2 on average)
// ride in its seq value, and the writer keeps the tree's right edge in
// memory, so appending to the log reads nothing from Badger.
//
// The meta value is the format version (4), the highest seq (8 bytes), and
// one 8-byte count per kind code from 1 up. It is rewritten in the same
// transaction as every batch, so counts never disagree with the records.
// Open upgrades a store of format 1, whose log hashes had keys of their
// own (upgrade.go), one of format 2 that holds no receipts (format 3
// added decision blocks), and one of format 3 (format 4 adds the register
// of decisions, decisions.go: their keys are written for every receipt
// whose blocks are held); it refuses a format 2 store with receipts
// (ErrOldReceipts: they are of protocol revision 1), a newer format, and
// a meta seq that differs from the highest s key.
//
// # Reads
//
// Get keeps recently read and written records, decoded, in a bounded LRU
// cache (Options.CacheBytes): the node looks up the same accreditations and
// rulesets on every ingest. Records read back from Badger are decoded with
// protocol.Decode, which recomputes the CID but does not re-verify the
// signature; records were verified before they were put. List joins the
// indexes of its filters by seq (see List). AccreditationsOf and
// LinkedFrom(c, KindRevocation), which every authorisation asks, keep
// their answers until a commit adds an entry under the scanned prefix
// (scanCache): an answer is only ever one a read of committed data gave.
//
// # Backups
//
// Backup writes a copy of a running store, and Restore makes a data
// directory of one. A backup is one snapshot: the group commit's keys
// (records, indexes, the log, the meta) as of the last durable commit
// when it starts, every acknowledged record in it; the keys written
// outside the group commit at their latest (the last signed checkpoint,
// read first, so that the snapshot's log covers it; the witness's, the
// outbox's and the restore mark; notices and fetched blocks, at version
// 1, are in the snapshot). Compaction keeps the snapshot's versions until
// the backup is done. One version of each live key is written, with the
// version it has. A backup file is:
//
//	"entente/backup" 0x00   15 bytes: the magic
//	version                 1 byte: 1
//	format                  1 byte: the store's on-disk format (4)
//	taken_at                8 bytes big-endian: Unix ms when the snapshot was taken
//	size                    8 bytes big-endian: the log's size, its records
//	root                    32 bytes: the log's root (zero for an empty log)
//	checkpoint              8 bytes big-endian: the size of the last signed
//	                        checkpoint it holds, 0 for none
//	frames                  Badger's backup stream, as badger.DB.Backup writes it
//	                        and DB.Load reads it: each frame an 8-byte
//	                        little-endian length n (1 <= n <= MaxBackupFrame)
//	                        and n bytes of a protobuf KVList
//	                        (github.com/dgraph-io/badger/v4/pb)
//	end                     8 bytes 0xff: the end of the frames
//	keys                    8 bytes big-endian: the key-value pairs in the frames
//	sha256                  32 bytes: the SHA-256 of every byte before end
//
// and nothing after. (Badger's own DB.Backup cannot run on a managed
// database; Backup reads at its own timestamps and writes the same
// frames, of about 4 MiB.)
// Restore refuses a file that is not one, cut short, damaged (the
// checksum), or of a newer format, leaving nothing behind; it loads the
// frames into a new directory beside the target, opens that as a store,
// checks every key, every record under its seq, the log's tree and the
// checkpoint against the header and trailer, leaves the restore mark
// (Restored) and only then renames it into place. The mark tells the
// node it was restored: it signs no checkpoint before its peers say
// which of its checkpoints they hold (DESIGN.md §6), and clears the mark
// (ClearRestored) once it may.
//
// # Lifecycle
//
// Open starts the writer and a value-log GC loop (Options.GCInterval).
// Close is idempotent: it refuses new calls, lets calls in flight finish,
// stops both goroutines, waits for them and closes Badger. After Close
// every method returns ErrClosed (Counts, Len and Size, which return no
// error, return zero values). Badger logs through Options.Logger.
package store
