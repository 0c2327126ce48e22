package protocol

import (
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol/signature"
)

// FormatVersion is the value of every record's "v" field.
const FormatVersion = 1

// SignatureDomain prefixes, with one zero byte after it, the bytes a record
// signature covers.
const SignatureDomain = "entente/record/v1"

// MaxClockSkew is how far in the future a record's issued_at may lie.
const MaxClockSkew = 5 * time.Minute

// envelope is the record map as encoded. Field order in the encoding is
// canonical (length-first): v, sig, body, kind, issuer, issued_at.
type envelope struct {
	V        int64           `cbor:"v"`
	Kind     Kind            `cbor:"kind"`
	Issuer   string          `cbor:"issuer"`
	IssuedAt int64           `cbor:"issued_at"`
	Body     cbor.RawMessage `cbor:"body"`
	Sig      []byte          `cbor:"sig"`
}

// unsignedEnvelope is the record map without "sig": what is signed.
type unsignedEnvelope struct {
	V        int64           `cbor:"v"`
	Kind     Kind            `cbor:"kind"`
	Issuer   string          `cbor:"issuer"`
	IssuedAt int64           `cbor:"issued_at"`
	Body     cbor.RawMessage `cbor:"body"`
}

// Record is a decoded record. It can only be made by Sign (which encodes
// and signs) or Decode/Parse (which check the encoding), so its CID always
// agrees with its bytes. A Record is immutable: do not modify the slices
// it returns.
type Record struct {
	raw      []byte
	cid      cid.Cid
	kind     Kind
	issuer   peer.ID
	issuedAt int64
	rawBody  []byte
	body     Body
	sig      []byte
}

// CID is the record's ID: CIDv1, dag-cbor, sha2-256 of Bytes.
func (r *Record) CID() cid.Cid { return r.cid }

// Bytes is the record's canonical DAG-CBOR encoding.
func (r *Record) Bytes() []byte { return r.raw }

// Kind is the record's kind.
func (r *Record) Kind() Kind { return r.kind }

// Issuer is the key that signed the record.
func (r *Record) Issuer() peer.ID { return r.issuer }

// IssuedAt is the issuer's claimed signing time, in Unix milliseconds.
func (r *Record) IssuedAt() int64 { return r.issuedAt }

// Body is the kind-specific body; type-switch on it, or use the typed
// accessors.
func (r *Record) Body() Body { return r.body }

// Signature is the record's Ed25519 signature.
func (r *Record) Signature() []byte { return r.sig }

// Jurisdiction is the jurisdiction a record's body names (accreditation,
// ruleset, consent, incident), or "" for kinds that name none.
func (r *Record) Jurisdiction() string {
	switch b := r.body.(type) {
	case *Accreditation:
		return b.Jurisdiction
	case *Ruleset:
		return b.Jurisdiction
	case *Consent:
		return b.Jurisdiction
	case *Incident:
		return b.Jurisdiction
	}
	return ""
}

// Links lists the records this record links to, in field order.
func (r *Record) Links() []cid.Cid {
	var out []cid.Cid
	add := func(l *Link) {
		if l != nil {
			out = append(out, l.Cid)
		}
	}
	switch b := r.body.(type) {
	case *Ruleset:
		add(b.Supersedes)
	case *Consent:
		add(b.Supersedes)
	case *Revocation:
		add(&b.Target)
	case *Incident:
		add(b.Follows)
	}
	// A receipt links only to decision blocks, which are not records.
	return out
}

func (r *Record) String() string {
	return fmt.Sprintf("%s %s by %s", r.kind, r.cid, r.issuer)
}

// Sign makes a record: it validates body, encodes the record canonically,
// signs it with key (which must be Ed25519) and computes its CID.
// issuedAt is in Unix milliseconds. The record holds its own copy of the
// body, decoded from its bytes: the caller may reuse body.
func Sign(key crypto.PrivKey, issuedAt int64, body Body) (*Record, error) {
	r, err := sign(key, issuedAt, body)
	if err != nil {
		return nil, err
	}
	own := newBody(body.Kind())
	if err := decMode.Unmarshal(r.rawBody, own); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	r.body = own
	return r, nil
}

// SignOwned is Sign for a body the caller hands over: the record keeps
// body itself rather than a copy, so neither body nor anything it refers
// to may change afterwards. It spares decoding the body again, a fair
// part of signing a receipt, which a node does for every decision.
func SignOwned(key crypto.PrivKey, issuedAt int64, body Body) (*Record, error) {
	r, err := sign(key, issuedAt, body)
	if err != nil {
		return nil, err
	}
	r.body = body
	return r, nil
}

// sign makes the record of Sign, but for its body.
func sign(key crypto.PrivKey, issuedAt int64, body Body) (*Record, error) {
	if key == nil || key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("sign: key must be Ed25519")
	}
	if body == nil {
		return nil, fmt.Errorf("sign: no body")
	}
	if err := body.validate(); err != nil {
		return nil, err
	}
	if issuedAt < 0 {
		return nil, errf(CodeMalformed, "issued_at", "must not be negative")
	}
	issuer, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	rawBody, err := encMode.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("sign: encode body: %w", err)
	}
	unsigned, err := encMode.Marshal(&unsignedEnvelope{V: FormatVersion, Kind: body.Kind(), Issuer: idString(issuer), IssuedAt: issuedAt, Body: rawBody})
	if err != nil {
		return nil, fmt.Errorf("sign: encode: %w", err)
	}
	if string(unsigned[:len(unsignedPrefix)]) != unsignedPrefix {
		return nil, fmt.Errorf("sign: the unsigned map does not start as canonical records do")
	}
	priv, err := key.Raw() // libp2p holds an Ed25519 key as crypto/ed25519 does
	if err != nil || len(priv) != signature.PrivateKeySize {
		return nil, fmt.Errorf("sign: key is not a 64-byte Ed25519 private key")
	}
	sig := signature.Sign(priv, withDomain(unsigned))
	// The record is the unsigned map with sig in second place, as
	// canonical order puts it (see SigningInput).
	tail := unsigned[len(unsignedPrefix):]
	raw := make([]byte, 0, len(sigPrefix)+len(sig)+len(tail))
	raw = append(raw, sigPrefix...)
	raw = append(raw, sig...)
	raw = append(raw, tail...)
	if len(raw) > MaxRecordSize {
		return nil, errf(CodeTooLarge, "", "record is %d bytes, over the %d-byte limit", len(raw), MaxRecordSize)
	}
	// The body was validated and every part encoded canonically, so the
	// record is what Decode would make of raw (TestSignDecodes holds Sign
	// to that); building it here spares a second validation of each
	// receipt.
	return &Record{
		raw:      raw,
		cid:      RecordCID(raw),
		kind:     body.Kind(),
		issuer:   issuer,
		issuedAt: issuedAt,
		rawBody:  rawBody,
		sig:      sig,
	}, nil
}

func signingInput(u *unsignedEnvelope) ([]byte, error) {
	enc, err := encMode.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encode signing input: %w", err)
	}
	return withDomain(enc), nil
}

// withDomain is the signing input of an unsigned map given in parts: the
// domain string, a zero byte, then the parts.
func withDomain(parts ...[]byte) []byte {
	n := len(SignatureDomain) + 1
	for _, p := range parts {
		n += len(p)
	}
	msg := make([]byte, 0, n)
	msg = append(msg, SignatureDomain...)
	msg = append(msg, 0)
	for _, p := range parts {
		msg = append(msg, p...)
	}
	return msg
}

// SigningInput returns the bytes the record's signature covers: the
// domain string, a zero byte, and the encoding of the record without sig.
func (r *Record) SigningInput() []byte {
	// A record's encoding is canonical, so it starts with a map of six
	// entries whose first two are v (1) and sig (64 bytes), and the map
	// without sig is the same bytes with five entries and sig cut out.
	// That is all re-encoding would give, without its cost.
	if len(r.raw) > len(sigPrefix) && string(r.raw[:len(sigPrefix)]) == sigPrefix {
		return withDomain([]byte(unsignedPrefix), r.raw[len(sigPrefix)+signature.Size:])
	}
	msg, _ := signingInput(&unsignedEnvelope{V: FormatVersion, Kind: r.kind, Issuer: idString(r.issuer), IssuedAt: r.issuedAt, Body: r.rawBody})
	return msg
}

// sigPrefix is how every record's encoding begins, up to the signature's
// bytes: a map of 6, "v": 1, "sig": a 64-byte string. unsignedPrefix is
// how the map without sig begins: a map of 5, "v": 1.
const (
	sigPrefix      = "\xa6\x61v\x01\x63sig\x58\x40"
	unsignedPrefix = "\xa5\x61v\x01"
)

// Decode checks that b is one record in canonical DAG-CBOR whose body
// fits its kind's schema, and returns it. It does not verify the
// signature (see Parse); it is the cheap first step for callers that
// first want to know a record's CID. Errors are *Error.
func Decode(b []byte) (*Record, error) {
	if len(b) > MaxRecordSize {
		return nil, errf(CodeTooLarge, "", "record is %d bytes, over the %d-byte limit", len(b), MaxRecordSize)
	}
	var env envelope
	if err := decodeStrict(b, &env, ""); err != nil {
		return nil, err
	}
	if env.V != FormatVersion {
		return nil, errf(CodeMalformed, "v", "unsupported format version %d (this node speaks %d)", env.V, FormatVersion)
	}
	if !env.Kind.Known() {
		return nil, errf(CodeUnknownKind, "kind", "%q is not a record kind of format version %d", env.Kind, FormatVersion)
	}
	issuer, err := ParsePeerID(env.Issuer)
	if err != nil {
		return nil, errf(CodeMalformed, "issuer", "%v", err)
	}
	if env.IssuedAt < 0 {
		return nil, errf(CodeMalformed, "issued_at", "must not be negative")
	}
	if len(env.Sig) != 64 {
		return nil, errf(CodeMalformed, "sig", "an Ed25519 signature is 64 bytes, not %d", len(env.Sig))
	}
	body := newBody(env.Kind)
	if err := decodeStrict(env.Body, body, "body"); err != nil {
		return nil, err
	}
	if err := body.validate(); err != nil {
		return nil, err
	}
	return &Record{
		raw:      b,
		cid:      RecordCID(b),
		kind:     env.Kind,
		issuer:   issuer,
		issuedAt: env.IssuedAt,
		rawBody:  env.Body,
		body:     body,
		sig:      env.Sig,
	}, nil
}

// VerifySignature checks the record's signature against its issuer's key.
func (r *Record) VerifySignature() error { return r.VerifySignatureWith(nil) }

// VerifySignatureWith is VerifySignature with keys' tables of the keys
// that sign often (see package signature): the same verdict, faster.
func (r *Record) VerifySignatureWith(keys *signature.Keys) error {
	pub, ok := ed25519Key(r.issuer)
	if !ok {
		return errf(CodeBadSignature, "issuer", "cannot recover an Ed25519 public key from the issuer")
	}
	if !keys.Verify(pub, r.SigningInput(), r.sig) {
		return errf(CodeBadSignature, "sig", "the signature does not verify against the issuer's key")
	}
	return nil
}

// Parse decodes b (see Decode) and verifies the record's signature.
func Parse(b []byte) (*Record, error) {
	r, err := Decode(b)
	if err != nil {
		return nil, err
	}
	if err := r.VerifySignature(); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckClock refuses a record issued more than MaxClockSkew after now.
func CheckClock(r *Record, now time.Time) error {
	if limit := now.Add(MaxClockSkew).UnixMilli(); r.issuedAt > limit {
		return errf(CodeClockSkew, "issued_at", "issued %s in the future; more than %s is refused",
			time.Duration(r.issuedAt-now.UnixMilli())*time.Millisecond, MaxClockSkew)
	}
	return nil
}

// CheckFresh refuses, with clock_skew, a record that does not enter the
// federation fresh at now: issued_at must lie in [now - maxAge, now +
// MaxClockSkew], both ends included (the upper bound is CheckClock's).
// A node applies it once, when a record first reaches it from a client or
// from gossip; records it syncs, fetches, is delivered or imports are
// exempt (package doc, "Freshness").
func CheckFresh(r *Record, now time.Time, maxAge time.Duration) error {
	if err := CheckClock(r, now); err != nil {
		return err
	}
	if oldest := now.Add(-maxAge).UnixMilli(); r.issuedAt < oldest {
		age := time.Duration(now.UnixMilli()-r.issuedAt) * time.Millisecond
		return errf(CodeClockSkew, "issued_at", "issued %s ago; a new record may be at most %s old, and only an operator may import an older one",
			age, maxAge)
	}
	return nil
}

// Typed accessors: each returns the body and true when the record is of
// that kind.

func (r *Record) Accreditation() (*Accreditation, bool) {
	b, ok := r.body.(*Accreditation)
	return b, ok
}
func (r *Record) Ruleset() (*Ruleset, bool)       { b, ok := r.body.(*Ruleset); return b, ok }
func (r *Record) Consent() (*Consent, bool)       { b, ok := r.body.(*Consent); return b, ok }
func (r *Record) Revocation() (*Revocation, bool) { b, ok := r.body.(*Revocation); return b, ok }
func (r *Record) Incident() (*Incident, bool)     { b, ok := r.body.(*Incident); return b, ok }
func (r *Record) Receipt() (*Receipt, bool)       { b, ok := r.body.(*Receipt); return b, ok }

// Millis converts a time to the Unix milliseconds records use.
func Millis(t time.Time) int64 { return t.UnixMilli() }
