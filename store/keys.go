package store

import (
	"encoding/binary"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/protocol"
)

// Key prefixes. doc.go describes the layout; these bytes are the on-disk
// format, so they never change meaning.
const (
	prefixRecord       byte = 'r' // r | cid                      -> seq | record bytes
	prefixSeq          byte = 's' // s | seq                      -> cid | log hashes
	prefixKind         byte = 'k' // k | kind code | seq | cid    -> empty
	prefixIssuer       byte = 'i' // i | n | issuer | seq | cid   -> empty
	prefixJurisdiction byte = 'j' // j | n | code | seq | cid     -> empty
	prefixSubject      byte = 'a' // a | n | subject | seq | cid  -> empty
	prefixAffected     byte = 'x' // x | n | peer | seq | cid     -> empty
	prefixSync         byte = 'y' // y | issued_at | cid          -> empty
	prefixBacklink     byte = 'l' // l | n | target | kind code | seq | cid -> empty
	prefixMeta         byte = 'm' // m                            -> meta value
	prefixBlock        byte = 'b' // b | cid                      -> block value (blockValue)
	// prefixNotice ('v') and prefixNotified ('V') are notices to platforms
	// and when they first reached one (notices.go).
	// prefixDecision ('e', decisions.go: e | field | n | value | seq |
	// item -> empty) is the register of decisions, written with them.
	// prefixCheckpoint ('c', checkpoint.go), prefixWitness ('w',
	// witness.go) and prefixOutbox ('o', outbox.go: o | cid | n | peer ->
	// JSON OutboxEntry) are written outside the group commit.
)

// formatVersion is the first byte of the meta value. Open upgrades a store
// written in an older format (upgrade.go) and refuses a newer one rather
// than misread it. Format 1 kept the log's hashes under keys of their own;
// format 2 held receipts of one decision each, before decision blocks
// (format 3) and their register (format 4, decisions.go).
const formatVersion byte = 4

// receiptCode is the kind code of receipts.
const receiptCode = 6

// seqLen is the length of a sequence number in keys: 8 bytes, big-endian,
// so that keys sort in acceptance order.
const seqLen = 8

// kindCodes gives each record kind its one-byte code in keys and in the
// meta value. Codes are on-disk format: append new kinds, never renumber.
var kindCodes = map[protocol.Kind]byte{
	protocol.KindAccreditation: 1,
	protocol.KindRuleset:       2,
	protocol.KindConsent:       3,
	protocol.KindRevocation:    4,
	protocol.KindIncident:      5,
	protocol.KindReceipt:       receiptCode,
}

// numKindCodes is one more than the highest kind code.
const numKindCodes = 7

// kindByCode inverts kindCodes.
var kindByCode = func() [numKindCodes]protocol.Kind {
	var out [numKindCodes]protocol.Kind
	for k, c := range kindCodes {
		out[c] = k
	}
	return out
}()

func kindCode(k protocol.Kind) (byte, bool) {
	c, ok := kindCodes[k]
	return c, ok
}

func appendSeq(b []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(b, seq) }

func recordKey(c cid.Cid) []byte { return append([]byte{prefixRecord}, c.Bytes()...) }
func blockKey(c cid.Cid) []byte  { return append([]byte{prefixBlock}, c.Bytes()...) }
func seqKey(seq uint64) []byte   { return appendSeq([]byte{prefixSeq}, seq) }
func metaKey() []byte            { return []byte{prefixMeta} }

// recordValue is the value of a record key: the record's seq, then its
// bytes. One key serves both Get and the CID-to-seq lookup, which saves a
// key per record on the write path.
func recordValue(seq uint64, r *protocol.Record) []byte {
	b := make([]byte, 0, seqLen+len(r.Bytes()))
	return append(appendSeq(b, seq), r.Bytes()...)
}

// splitRecordValue returns the seq and the record bytes of a record
// value; the bytes alias v.
func splitRecordValue(v []byte) (uint64, []byte, error) {
	if len(v) <= seqLen {
		return 0, nil, fmt.Errorf("store: record value of %d bytes", len(v))
	}
	return binary.BigEndian.Uint64(v), v[seqLen:], nil
}

// indexPrefix is the part of an index key before the seq: the prefix
// byte and, for indexes keyed by a variable-length field, the field's
// length (one byte) and bytes. The length keeps one field value from being
// a key prefix of another.
func indexPrefix(prefix byte, field []byte) []byte {
	if len(field) > 255 {
		// Peer IDs, CIDs and jurisdiction codes are all far shorter; a
		// longer field would be a bug upstream, not input to tolerate.
		panic(fmt.Sprintf("store: index field of %d bytes", len(field)))
	}
	b := make([]byte, 0, 2+len(field)+seqLen+40)
	b = append(b, prefix, byte(len(field)))
	return append(b, field...)
}

func kindPrefix(code byte) []byte { return []byte{prefixKind, code} }

// backlinkPrefix leads the keys of the records of one kind that link to
// target. Splitting backlinks by kind lets "is this consent revoked?" skip
// the many receipts that cite the same consent.
func backlinkPrefix(target cid.Cid, code byte) []byte {
	return append(indexPrefix(prefixBacklink, target.Bytes()), code)
}

// indexKey is an index prefix, the seq and the record's binary CID.
func indexKey(pfx []byte, seq uint64, c cid.Cid) []byte {
	b := make([]byte, 0, len(pfx)+seqLen+c.ByteLen())
	b = append(b, pfx...)
	b = appendSeq(b, seq)
	return append(b, c.Bytes()...)
}

// parseIndexKey splits what follows an index prefix into seq and CID.
func parseIndexKey(rest []byte) (uint64, cid.Cid, error) {
	if len(rest) <= seqLen {
		return 0, cid.Undef, fmt.Errorf("store: index key too short (%d bytes after prefix)", len(rest))
	}
	c, err := cid.Cast(rest[seqLen:])
	if err != nil {
		return 0, cid.Undef, fmt.Errorf("store: index key: %w", err)
	}
	return binary.BigEndian.Uint64(rest), c, nil
}

// meta is the value of the meta key: the highest seq and the number of
// records of each kind, written in the same transaction as the records.
type meta struct {
	version byte // as read; marshal writes formatVersion
	seq     uint64
	counts  [numKindCodes]int64
}

// Encoding: format version (1 byte), seq (8 bytes), then one 8-byte count
// for each kind code from 1 up.
func (m *meta) marshal() []byte {
	b := make([]byte, 0, 1+8+8*(numKindCodes-1))
	b = append(b, formatVersion)
	b = appendSeq(b, m.seq)
	for code := 1; code < numKindCodes; code++ {
		b = binary.BigEndian.AppendUint64(b, uint64(m.counts[code]))
	}
	return b
}

func (m *meta) unmarshal(b []byte) error {
	if len(b) < 1 || b[0] == 0 || b[0] > formatVersion {
		v := -1
		if len(b) > 0 {
			v = int(b[0])
		}
		return fmt.Errorf("store: on-disk format version %d, this build reads versions 1 to %d", v, formatVersion)
	}
	version := b[0]
	b = b[1:]
	if len(b) < 8 || (len(b)-8)%8 != 0 || (len(b)-8)/8 > numKindCodes-1 {
		return fmt.Errorf("store: meta value of %d bytes is malformed", len(b)+1)
	}
	*m = meta{version: version, seq: binary.BigEndian.Uint64(b)}
	b = b[8:]
	for code := 1; len(b) > 0; code++ {
		m.counts[code] = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	return nil
}

// indexKeys lists the index keys (all with empty values) of record r
// accepted at seq: by kind, issuer and jurisdiction, accreditations by
// subject, and a backlink for each record r links to.
func indexKeys(r *protocol.Record, seq uint64, backlinks []cid.Cid) ([][]byte, error) {
	c := r.CID()
	code, ok := kindCode(r.Kind())
	if !ok {
		return nil, fmt.Errorf("store: record %s: kind %q has no kind code", c, r.Kind())
	}
	keys := make([][]byte, 0, 5)
	keys = append(keys,
		indexKey(kindPrefix(code), seq, c),
		indexKey(indexPrefix(prefixIssuer, []byte(r.Issuer())), seq, c))
	if j := r.Jurisdiction(); j != "" {
		keys = append(keys, indexKey(indexPrefix(prefixJurisdiction, []byte(j)), seq, c))
	}
	if a, ok := r.Accreditation(); ok {
		subject, err := protocol.ParsePeerID(a.Subject) // memoised: decoding parsed it just before
		if err != nil {
			return nil, fmt.Errorf("store: record %s: accreditation subject: %w", c, err)
		}
		keys = append(keys, indexKey(indexPrefix(prefixSubject, []byte(subject)), seq, c))
	}
	if inc, ok := r.Incident(); ok {
		for _, a := range inc.Affected {
			id, err := protocol.ParsePeerID(a)
			if err != nil {
				return nil, fmt.Errorf("store: record %s: affected: %w", c, err)
			}
			keys = append(keys, indexKey(indexPrefix(prefixAffected, []byte(id)), seq, c))
		}
	}
	if Syncable(r) {
		keys = append(keys, syncKey(r.IssuedAt(), c))
	}
	for _, target := range append(r.Links(), backlinks...) {
		keys = append(keys, indexKey(backlinkPrefix(target, code), seq, c))
	}
	return keys, nil
}

// Syncable reports whether r belongs to the set nodes reconcile with their
// peers: protocol's audience rule decides (every record every member may
// receive; not receipts, not TLP:RED notices).
func Syncable(r *protocol.Record) bool { return protocol.AudienceOf(r).Synced() }

// syncKey orders the sync set by issued_at, then CID.
func syncKey(issuedAt int64, c cid.Cid) []byte {
	k := make([]byte, 0, 9+len(c.Bytes()))
	k = append(k, prefixSync)
	k = binary.BigEndian.AppendUint64(k, uint64(issuedAt))
	return append(k, c.Bytes()...)
}
