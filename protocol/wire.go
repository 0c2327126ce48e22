package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/tlog"
)

// The wire between nodes: libp2p protocol IDs and the bytes each protocol
// carries (package doc, "Wire protocols"). Every parser here is strict:
// it accepts exactly the bytes its encoder writes.

// libp2p protocol IDs spoken between nodes, one per protocol. The version
// is part of the ID: an incompatible change gets a new ID, and nodes may
// speak both.
const (
	// FetchProtocolID asks a peer for records by CID.
	FetchProtocolID = "/entente/fetch/1.0.0"
	// SyncProtocolID reconciles two nodes' record sets (negentropy).
	SyncProtocolID = "/entente/sync/1.0.0"
	// SyncAllProtocolID asks a peer for its whole sync set, for a node
	// that holds nothing yet.
	SyncAllProtocolID = "/entente/sync-all/1.0.0"
	// CheckpointProtocolID asks a peer for its latest checkpoint and a
	// consistency proof.
	CheckpointProtocolID = "/entente/checkpoint/1.0.0"
	// CosignProtocolID returns a witness's cosignature to the log it
	// cosigned.
	CosignProtocolID = "/entente/cosign/1.0.0"
	// WitnessedProtocolID asks a witness for the latest checkpoint of a
	// log that it verified and cosigned (a restored node asks its peers
	// for its own, DESIGN.md §6).
	WitnessedProtocolID = "/entente/witnessed/1.0.0"
)

// RecordsTopic is the gossipsub topic on which a federation's nodes spread
// records. A message's data is exactly one encoded record and its message
// ID is the record's CID; the record's own signature authenticates it.
func RecordsTopic(federation string) string {
	return "/entente/" + federation + "/records/1"
}

// MaxVarintLen is the longest unsigned varint on the wire: multiformats
// unsigned varints are at most 9 bytes (63 bits).
const MaxVarintLen = 9

// Errors of the framing. Peers cause them: a node resets the stream.
var (
	ErrFrameTooLarge = errors.New("frame over its size limit")
	ErrFrameEmpty    = errors.New("empty frame")
	ErrVarint        = errors.New("not a minimally encoded unsigned varint of at most 9 bytes")
)

// AppendFrame appends a frame holding body: its length as an unsigned
// varint, then body.
func AppendFrame(dst, body []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(body))), body...)
}

// FrameLen is the bytes a frame of an n-byte body takes on the wire.
func FrameLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n)) + n
}

// FrameReader is what ReadFrame reads from (a *bufio.Reader).
type FrameReader interface {
	io.Reader
	io.ByteReader
}

// ReadFrame reads one frame of 1 to limit bytes. At the end of the input
// before a frame starts it returns io.EOF; within a frame,
// io.ErrUnexpectedEOF.
func ReadFrame(r FrameReader, limit int) ([]byte, error) {
	size, err := ReadUvarint(r, uint64(limit))
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, ErrFrameEmpty
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// ReadUvarint reads a minimally encoded unsigned varint no larger than
// limit, reading no further than the byte where it goes over.
func ReadUvarint(r io.ByteReader, limit uint64) (uint64, error) {
	var x uint64
	for i := 0; i < MaxVarintLen; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		x |= uint64(b&0x7f) << (7 * i)
		if x > limit {
			return 0, ErrFrameTooLarge
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, ErrVarint
			}
			return x, nil
		}
	}
	return 0, ErrVarint
}

// byteCursor reads a byte string as a FrameReader and says whether it is
// used up.
type byteCursor struct {
	b []byte
	i int
}

func (c *byteCursor) Read(p []byte) (int, error) {
	if c.i == len(c.b) {
		return 0, io.EOF
	}
	n := copy(p, c.b[c.i:])
	c.i += n
	return n, nil
}

func (c *byteCursor) ReadByte() (byte, error) {
	if c.i == len(c.b) {
		return 0, io.EOF
	}
	c.i++
	return c.b[c.i-1], nil
}

func (c *byteCursor) done() bool { return c.i == len(c.b) }

// Fetch (/entente/fetch/1.0.0).
const (
	// FetchMaxCIDs is the most CIDs one fetch request may name.
	FetchMaxCIDs = 64
	// FetchMaxRequest bounds a fetch request frame's body: 64 CIDs of 36
	// bytes with their CBOR heads take under 2.5 KiB.
	FetchMaxRequest = 4 << 10
	// FetchMaxAnswer bounds a fetch answer frame's body: a status byte
	// and a record.
	FetchMaxAnswer = MaxRecordSize + 1

	fetchStatusRecord  = 0x00
	fetchStatusNotHeld = 0x01
)

// Errors of the fetch messages.
var (
	ErrFetchRequest = errors.New("fetch: request is not a canonical CBOR array of 1 to 64 binary record IDs")
	ErrFetchAnswer  = errors.New("fetch: answer is neither a record (status 0) nor not held (status 1)")
)

var (
	wireEncMode = must(cbor.CoreDetEncOptions().EncMode())
	wireDecMode = must(cbor.DecOptions{
		MaxNestedLevels:  4,
		MaxArrayElements: FetchMaxCIDs,
		IndefLength:      cbor.IndefLengthForbidden,
	}.DecMode())
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// EncodeFetchRequest is the body of the request frame for cids: the
// canonical CBOR array of their binary forms.
func EncodeFetchRequest(cids []cid.Cid) ([]byte, error) {
	if len(cids) == 0 || len(cids) > FetchMaxCIDs {
		return nil, fmt.Errorf("fetch: a request names 1 to %d CIDs, not %d", FetchMaxCIDs, len(cids))
	}
	list := make([][]byte, len(cids))
	for i, c := range cids {
		if !IsRecordID(c) {
			return nil, fmt.Errorf("fetch: %s is not a record ID", c)
		}
		list[i] = c.Bytes()
	}
	body, err := wireEncMode.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("fetch: encode request: %w", err)
	}
	return body, nil
}

// DecodeFetchRequest parses a fetch request frame's body: the canonical
// encoding of an array of 1 to FetchMaxCIDs byte strings, each the binary
// form of a record ID.
func DecodeFetchRequest(b []byte) ([]cid.Cid, error) {
	if len(b) > FetchMaxRequest {
		return nil, fmt.Errorf("%w: %d bytes", ErrFetchRequest, len(b))
	}
	var list [][]byte
	if err := wireDecMode.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetchRequest, err)
	}
	if len(list) == 0 || len(list) > FetchMaxCIDs {
		return nil, ErrFetchRequest
	}
	// Parse then re-encode must give the same bytes: this refuses every
	// encoding but the canonical one (tags, long heads, text strings).
	if again, err := wireEncMode.Marshal(list); err != nil || string(again) != string(b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrFetchRequest)
	}
	cids := make([]cid.Cid, len(list))
	for i, raw := range list {
		c, err := cid.Cast(raw)
		if err != nil || !IsRecordID(c) || string(c.Bytes()) != string(raw) {
			return nil, fmt.Errorf("%w: entry %d is not a binary record ID", ErrFetchRequest, i)
		}
		cids[i] = c
	}
	return cids, nil
}

// AppendFetchAnswer appends the answer frame for one requested CID: the
// status byte 0 and the record's bytes, or the status byte 1 alone for
// nil (not held, or not for the asker).
func AppendFetchAnswer(dst, record []byte) []byte {
	if record == nil {
		return AppendFrame(dst, []byte{fetchStatusNotHeld})
	}
	dst = binary.AppendUvarint(dst, uint64(1+len(record)))
	return append(append(dst, fetchStatusRecord), record...)
}

// DecodeFetchAnswer parses an answer frame's body: it returns the
// record's bytes and true, or nil and false for "not held". It does not
// look into the record; the asker checks that it hashes to the CID it
// asked for (RecordCID) before anything else.
func DecodeFetchAnswer(frame []byte) ([]byte, bool, error) {
	switch {
	case len(frame) == 1 && frame[0] == fetchStatusNotHeld:
		return nil, false, nil
	case len(frame) > 1 && len(frame) <= FetchMaxAnswer && frame[0] == fetchStatusRecord:
		return frame[1:], true, nil
	}
	return nil, false, ErrFetchAnswer
}

// Sync (/entente/sync/1.0.0 and /entente/sync-all/1.0.0).
const (
	// SyncMaxFrame bounds a sync frame's body.
	SyncMaxFrame = 512 << 10
	// SyncMaxMessage is the negentropy frame size limit a node asks of
	// its negentropy sessions (below SyncMaxFrame).
	SyncMaxMessage = 256 << 10
	// SyncMaxRounds bounds the messages of one reconciliation.
	SyncMaxRounds = 1000
)

// SyncID is the negentropy ID of a record: its CID's SHA-256 digest
// (every record ID is CIDv1 dag-cbor sha2-256). It reports false for a
// CID that is not a record ID.
func SyncID(c cid.Cid) ([32]byte, bool) {
	var id [32]byte
	b := c.Bytes()
	if len(b) != 36 || !IsRecordID(c) {
		return id, false
	}
	copy(id[:], b[4:])
	return id, true
}

// RecordIDOf is the record ID whose SHA-256 digest is digest (the
// inverse of SyncID).
func RecordIDOf(digest [32]byte) cid.Cid {
	return cidFromDigest(digest[:])
}

// Checkpoint exchange (/entente/checkpoint/1.0.0).
const (
	// MaxCheckpointProof bounds the hashes of a consistency proof on the
	// wire: log2 of any tree size, twice.
	MaxCheckpointProof = 64
	// MaxCheckpointRequest and MaxCheckpointAnswer bound the two messages.
	MaxCheckpointRequest = MaxVarintLen
	MaxCheckpointAnswer  = 2*MaxVarintLen + MaxCheckpointNote + MaxCheckpointProof*tlog.HashSize
	// maxTreeSize is the largest tree size on the wire (it fits an int64).
	maxTreeSize = 1<<63 - 1
)

// ErrCheckpointMessage is wrapped by the errors of the checkpoint and
// cosign message decoders.
var ErrCheckpointMessage = errors.New("checkpoint exchange: malformed message")

// EncodeCheckpointRequest is the request of a peer's latest checkpoint by
// a witness that last verified one of size known (0 for none).
func EncodeCheckpointRequest(known uint64) []byte {
	return binary.AppendUvarint(nil, known)
}

// DecodeCheckpointRequest parses a checkpoint request: one minimal
// unsigned varint, the size known, and nothing after it.
func DecodeCheckpointRequest(b []byte) (uint64, error) {
	c := &byteCursor{b: b}
	size, err := ReadUvarint(c, maxTreeSize)
	if err != nil || !c.done() {
		return 0, fmt.Errorf("%w: request %x", ErrCheckpointMessage, b)
	}
	return size, nil
}

// EncodeCheckpointAnswer is the answer to a checkpoint request: the
// latest checkpoint note (empty while the log is empty) and the
// consistency proof from the size asked to the note's (empty when the
// asked size is 0 or not smaller).
func EncodeCheckpointAnswer(note []byte, proof tlog.TreeProof) ([]byte, error) {
	if len(note) > MaxCheckpointNote || len(proof) > MaxCheckpointProof {
		return nil, fmt.Errorf("%w: note of %d bytes, proof of %d hashes", ErrCheckpointMessage, len(note), len(proof))
	}
	b := AppendFrame(nil, note)
	b = binary.AppendUvarint(b, uint64(len(proof)))
	for _, h := range proof {
		b = append(b, h[:]...)
	}
	return b, nil
}

// DecodeCheckpointAnswer parses a checkpoint answer: a minimal unsigned
// varint and that many bytes of note (at most MaxCheckpointNote; 0 for an
// empty log), a minimal unsigned varint count (at most
// MaxCheckpointProof) and that many 32-byte hashes, and nothing after.
func DecodeCheckpointAnswer(b []byte) ([]byte, tlog.TreeProof, error) {
	bad := func(what string) ([]byte, tlog.TreeProof, error) {
		return nil, nil, fmt.Errorf("%w: answer: %s", ErrCheckpointMessage, what)
	}
	c := &byteCursor{b: b}
	n, err := ReadUvarint(c, MaxCheckpointNote)
	if err != nil {
		return bad("note length: " + err.Error())
	}
	if uint64(len(b)-c.i) < n {
		return bad("note cut short")
	}
	note := b[c.i : c.i+int(n)]
	c.i += int(n)
	count, err := ReadUvarint(c, MaxCheckpointProof)
	if err != nil {
		return bad("proof length: " + err.Error())
	}
	if uint64(len(b)-c.i) != count*tlog.HashSize {
		return bad(fmt.Sprintf("%d bytes for a proof of %d hashes", len(b)-c.i, count))
	}
	proof := make(tlog.TreeProof, count)
	for i := range proof {
		copy(proof[i][:], b[c.i:])
		c.i += tlog.HashSize
	}
	if n == 0 {
		note = nil
	}
	return note, proof, nil
}

// Cosign (/entente/cosign/1.0.0).

// CosignAnswer is a log's one-byte answer to a returned cosignature.
type CosignAnswer byte

// Answers to a cosign request.
const (
	CosignKept    CosignAnswer = 0 // added to the latest checkpoint's note
	CosignStale   CosignAnswer = 1 // not of the latest checkpoint
	CosignRefused CosignAnswer = 2 // not a valid cosignature of a member
)

// MaxCosignRequest bounds a cosign request.
const MaxCosignRequest = MaxVarintLen + MaxCheckpointNote

// EncodeCosignRequest is the request that returns note, the log's
// checkpoint note carrying the witness's cosignature: one frame holding
// the note.
func EncodeCosignRequest(note []byte) ([]byte, error) {
	if len(note) == 0 || len(note) > MaxCheckpointNote {
		return nil, fmt.Errorf("%w: cosigned note of %d bytes", ErrCheckpointMessage, len(note))
	}
	return AppendFrame(nil, note), nil
}

// DecodeCosignRequest parses a cosign request: one frame of 1 to
// MaxCheckpointNote bytes, and nothing after.
func DecodeCosignRequest(b []byte) ([]byte, error) {
	c := &byteCursor{b: b}
	note, err := ReadFrame(c, MaxCheckpointNote)
	if err != nil || !c.done() {
		return nil, fmt.Errorf("%w: cosign request", ErrCheckpointMessage)
	}
	return note, nil
}

// DecodeCosignAnswer parses the one byte of a cosign answer.
func DecodeCosignAnswer(b []byte) (CosignAnswer, error) {
	if len(b) != 1 || b[0] > byte(CosignRefused) {
		return 0, fmt.Errorf("%w: cosign answer %x", ErrCheckpointMessage, b)
	}
	return CosignAnswer(b[0]), nil
}

// Witnessed (/entente/witnessed/1.0.0).
const (
	// maxWitnessedLog bounds the peer ID a witnessed request names (an
	// Ed25519 peer ID is 38 bytes).
	maxWitnessedLog = 64
	// MaxWitnessedRequest and MaxWitnessedAnswer bound the two messages.
	MaxWitnessedRequest = 1 + maxWitnessedLog
	MaxWitnessedAnswer  = MaxVarintLen + MaxCheckpointNote
)

// EncodeWitnessedRequest asks a witness for the latest checkpoint of the
// log of node id that it verified: one frame holding id's binary form.
func EncodeWitnessedRequest(id peer.ID) ([]byte, error) {
	if _, err := ParsePeerID(id.String()); err != nil || len(id) > maxWitnessedLog {
		return nil, fmt.Errorf("%w: witnessed request for %q", ErrCheckpointMessage, id)
	}
	return AppendFrame(nil, []byte(id)), nil
}

// DecodeWitnessedRequest parses a witnessed request: one frame holding
// the binary form of an Ed25519 peer ID (as ParsePeerID accepts its
// string), and nothing after.
func DecodeWitnessedRequest(b []byte) (peer.ID, error) {
	c := &byteCursor{b: b}
	raw, err := ReadFrame(c, maxWitnessedLog)
	if err != nil || !c.done() {
		return "", fmt.Errorf("%w: witnessed request %x", ErrCheckpointMessage, b)
	}
	id, err := peer.IDFromBytes(raw)
	if err == nil {
		_, err = ParsePeerID(id.String())
	}
	if err != nil {
		return "", fmt.Errorf("%w: witnessed request: %v", ErrCheckpointMessage, err)
	}
	return id, nil
}

// EncodeWitnessedAnswer is a witness's answer: the note it keeps of the
// log's latest checkpoint it verified, with its cosignature (empty when
// it verified none), as a varint length and the note.
func EncodeWitnessedAnswer(note []byte) ([]byte, error) {
	if len(note) > MaxCheckpointNote {
		return nil, fmt.Errorf("%w: witnessed note of %d bytes", ErrCheckpointMessage, len(note))
	}
	return AppendFrame(nil, note), nil
}

// DecodeWitnessedAnswer parses a witnessed answer: a minimal unsigned
// varint n <= MaxCheckpointNote and n bytes of note (nil for n = 0), and
// nothing after.
func DecodeWitnessedAnswer(b []byte) ([]byte, error) {
	c := &byteCursor{b: b}
	n, err := ReadUvarint(c, MaxCheckpointNote)
	if err != nil || uint64(len(b)-c.i) != n {
		return nil, fmt.Errorf("%w: witnessed answer of %d bytes", ErrCheckpointMessage, len(b))
	}
	if n == 0 {
		return nil, nil
	}
	return b[c.i:], nil
}
