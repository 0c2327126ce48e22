package protocol

import (
	"crypto/sha256"
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// CodecDagCBOR is the multicodec of DAG-CBOR, the codec of every record CID.
const CodecDagCBOR = 0x71

// tagCID is the CBOR tag DAG-CBOR reserves for links, the only tag allowed.
const tagCID = 42

// Link is a link to another record: a CID, encoded in DAG-CBOR as tag 42
// around a byte string holding a zero byte (the identity multibase prefix)
// and the binary CID.
type Link struct{ cid.Cid }

// LinkTo returns a Link to c.
func LinkTo(c cid.Cid) Link { return Link{c} }

// LinkPtr returns a pointer to a Link to c, for optional fields.
func LinkPtr(c cid.Cid) *Link { return &Link{c} }

// MarshalCBOR encodes the link as DAG-CBOR tag 42.
func (l Link) MarshalCBOR() ([]byte, error) {
	if !l.Defined() {
		return nil, fmt.Errorf("undefined link")
	}
	// Tag 42 (0xd8 0x2a), then a byte string of a zero byte and the
	// binary CID, its length in the shortest head: what the encoder makes
	// of cbor.Tag{42, bytes}, without its reflection (a receipt has a
	// dozen links).
	c := l.Bytes()
	n := 1 + len(c)
	b := make([]byte, 0, 5+n)
	b = append(b, 0xd8, tagCID)
	switch {
	case n < 24:
		b = append(b, 0x40|byte(n))
	case n <= 0xff:
		b = append(b, 0x58, byte(n))
	default: // binary CIDs are far shorter than 64 KiB
		b = append(b, 0x59, byte(n>>8), byte(n))
	}
	b = append(b, 0)
	return append(b, c...), nil
}

// UnmarshalCBOR decodes tag 42 around a zero-prefixed binary CID.
func (l *Link) UnmarshalCBOR(data []byte) error {
	var raw cbor.RawTag
	if err := decMode.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw.Number != tagCID {
		return fmt.Errorf("tag %d where a link (tag 42) was expected", raw.Number)
	}
	var b []byte
	if err := decMode.Unmarshal(raw.Content, &b); err != nil {
		return fmt.Errorf("link content: %w", err)
	}
	if len(b) < 2 || b[0] != 0 {
		return fmt.Errorf("link content must be a zero byte followed by a binary CID")
	}
	n, c, err := cid.CidFromBytes(b[1:])
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	if n != len(b)-1 {
		return fmt.Errorf("link: trailing bytes after CID")
	}
	l.Cid = c
	return nil
}

// IsRecordID reports whether c has the form of a record ID: CIDv1,
// dag-cbor, sha2-256.
func IsRecordID(c cid.Cid) bool {
	if !c.Defined() || c.Version() != 1 || c.Type() != CodecDagCBOR {
		return false
	}
	p := c.Prefix()
	return p.MhType == mh.SHA2_256 && p.MhLength == 32
}

// RecordCID computes the record ID of an encoded record.
func RecordCID(encoded []byte) cid.Cid {
	d := sha256.Sum256(encoded)
	return cidFromDigest(d[:])
}

// cidFromDigest is the record ID of a SHA-256 digest. The multihash is
// made by hand (code, length, digest), which is what mh.Sum makes,
// without its registry of hash functions: every record's CID is computed
// at least twice on its way in.
func cidFromDigest(d []byte) cid.Cid {
	sum := make([]byte, 0, 2+sha256.Size)
	sum = append(sum, mh.SHA2_256, sha256.Size)
	return cid.NewCidV1(CodecDagCBOR, append(sum, d...))
}

// ParseCID parses a record ID in its text form, which must be the one
// canonical form (DESIGN.md §4): CIDv1, dag-cbor, sha2-256, written in
// lower-case base32 with the multibase prefix b, and the unused bits of
// its last character zero, so that one record has exactly one text form.
// Base32 decoders commonly accept the last character with other unused
// bits, which would let a mistyped CID name the record it resembles: that
// and every other spelling is refused, with CodeBadCID.
func ParseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, errf(CodeBadCID, "", "not a CID: %v", err)
	}
	if !IsRecordID(c) {
		return cid.Undef, errf(CodeBadCID, "", "not a record ID (want CIDv1, dag-cbor, sha2-256): %s", s)
	}
	if canonical := c.String(); canonical != s {
		return cid.Undef, errf(CodeBadCID, "", "%s is not the canonical text form of a record ID (lower-case base32 with prefix b, unused bits zero)", s)
	}
	return c, nil
}
