package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoints of a node's log are C2SP tlog-checkpoint signed notes; see
// the package doc, "Checkpoints and cosignatures".

// MaxCheckpointNote bounds a checkpoint note, its signature and the
// cosignatures a node keeps on it, wherever one is read.
const MaxCheckpointNote = 16 << 10

// maxCheckpointText bounds a checkpoint's note text: an origin of at most
// maxOriginLen bytes, a size, a root.
const (
	maxCheckpointText = 256
	maxOriginLen      = 128
)

// ErrMalformedCheckpoint is wrapped by the errors of ParseCheckpoint and
// OpenCheckpoint for a note that is not a checkpoint of the expected form.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// CheckpointOrigin is the origin line of node id's checkpoints in
// federation, which is also the name of their signature key and of the
// node's cosignatures.
func CheckpointOrigin(federation string, id peer.ID) string {
	return "entente/" + federation + "/" + id.String()
}

// LogCheckpoint is what a checkpoint states: a tree of a node's log.
type LogCheckpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// Text is the checkpoint's note text, the bytes its signature covers.
func (c LogCheckpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + c.Root.String() + "\n"
}

// ParseCheckpoint parses a checkpoint's note text. It accepts only the
// form Text produces: exactly three lines, an origin that is a valid note
// key name of at most 128 bytes, a size in canonical decimal that fits an
// int64, and a 32-byte root in padded standard base64. Extension lines
// are refused: entente's checkpoints have none.
func ParseCheckpoint(text string) (LogCheckpoint, error) {
	bad := func(format string, args ...any) (LogCheckpoint, error) {
		return LogCheckpoint{}, fmt.Errorf("%w: %s", ErrMalformedCheckpoint, fmt.Sprintf(format, args...))
	}
	if len(text) > maxCheckpointText {
		return bad("text of %d bytes (at most %d)", len(text), maxCheckpointText)
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return bad("want three lines, each ending in a newline")
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	size := strings.TrimSuffix(lines[1], "\n")
	root := strings.TrimSuffix(lines[2], "\n")
	if !validNoteName(origin) || len(origin) > maxOriginLen {
		return bad("origin %q is not a key name (non-empty, at most %d bytes, no spaces or '+')", origin, maxOriginLen)
	}
	n, err := strconv.ParseUint(size, 10, 63)
	if err != nil || strconv.FormatUint(n, 10) != size {
		return bad("size %q is not a canonical decimal", size)
	}
	h, err := base64.StdEncoding.Strict().DecodeString(root)
	if err != nil || len(h) != tlog.HashSize || len(root) != 44 {
		return bad("root %q is not a base64 32-byte hash", root)
	}
	c := LogCheckpoint{Origin: origin, Size: n}
	copy(c.Root[:], h)
	return c, nil
}

// SignedCheckpoint is a checkpoint with the signed note that states it
// (which may carry cosignatures too).
type SignedCheckpoint struct {
	LogCheckpoint
	Note []byte
}

// CheckpointVerifierKey is the note verifier key of node id's checkpoints
// in federation, as note.NewVerifier reads it: "<origin>+<key hash, 8 hex
// digits>+<base64 of 0x01 and the 32-byte Ed25519 public key>". The
// public key comes from the peer ID.
func CheckpointVerifierKey(federation string, id peer.ID) (string, error) {
	pub, err := PeerEd25519(id)
	if err != nil {
		return "", fmt.Errorf("checkpoint verifier: %w", err)
	}
	name := CheckpointOrigin(federation, id)
	if !validNoteName(name) || len(name) > maxOriginLen {
		return "", fmt.Errorf("checkpoint verifier: %q is not a key name of at most %d bytes", name, maxOriginLen)
	}
	return note.NewEd25519VerifierKey(name, pub)
}

// CheckpointVerifier is the note verifier of node id's checkpoints in
// federation.
func CheckpointVerifier(federation string, id peer.ID) (note.Verifier, error) {
	vkey, err := CheckpointVerifierKey(federation, id)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

// OpenCheckpoint verifies that msg is a checkpoint note of node id in
// federation, signed by the node's key, and returns it. Other signatures
// (cosignatures) may be present; they are not checked here
// (VerifyCosignature checks one).
func OpenCheckpoint(msg []byte, federation string, id peer.ID) (SignedCheckpoint, error) {
	v, err := CheckpointVerifier(federation, id)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return OpenCheckpointWith(msg, v)
}

// OpenCheckpointWith is OpenCheckpoint with the node's verifier in hand.
// An error that wraps *note.UnverifiedNoteError means the note is well
// formed but not signed by v.
func OpenCheckpointWith(msg []byte, v note.Verifier) (SignedCheckpoint, error) {
	if len(msg) > MaxCheckpointNote {
		return SignedCheckpoint{}, fmt.Errorf("%w: note of %d bytes (at most %d)", ErrMalformedCheckpoint, len(msg), MaxCheckpointNote)
	}
	nt, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint of %s: %w", v.Name(), err)
	}
	c, err := ParseCheckpoint(nt.Text)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	if c.Origin != v.Name() {
		return SignedCheckpoint{}, fmt.Errorf("%w: origin %q signed by key %q", ErrMalformedCheckpoint, c.Origin, v.Name())
	}
	return SignedCheckpoint{LogCheckpoint: c, Note: msg}, nil
}

// CheckpointSigner is a node's signer of checkpoints and cosignatures:
// its Ed25519 key under its origin in a federation.
type CheckpointSigner struct {
	note.Signer
	key      ed25519.PrivateKey
	verifier note.Verifier
}

// NewCheckpointSigner makes the checkpoint signer of the node whose key
// is key, in federation. The signer itself is golang.org/x/mod's
// (note.NewSigner); so is its verifier.
func NewCheckpointSigner(federation string, key crypto.PrivKey) (*CheckpointSigner, error) {
	priv, err := Ed25519Private(key)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	vkey, err := CheckpointVerifierKey(federation, id)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	// A signer key is the verifier key's name and hash with the seed in
	// place of the public key: "PRIVATE+KEY+<name>+<hash>+<base64(0x01 seed)>".
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", v.Name(), v.KeyHash(),
		base64.StdEncoding.EncodeToString(append([]byte{noteAlgEd25519}, priv.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	return &CheckpointSigner{Signer: s, key: priv, verifier: v}, nil
}

// Verifier is the verifier of the signer's own checkpoints.
func (s *CheckpointSigner) Verifier() note.Verifier { return s.verifier }

// Sign signs a checkpoint of the signer's origin and returns its note.
func (s *CheckpointSigner) Sign(c LogCheckpoint) (SignedCheckpoint, error) {
	if c.Origin != s.Name() {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint signer: origin %q is not %q", c.Origin, s.Name())
	}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, s.Signer)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("signing checkpoint %d: %w", c.Size, err)
	}
	return SignedCheckpoint{LogCheckpoint: c, Note: msg}, nil
}

// noteAlgEd25519 is note's algorithm byte for Ed25519 keys.
const noteAlgEd25519 = 1

// validNoteName is note's rule for key names: non-empty UTF-8 without
// spaces or '+'.
func validNoteName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// PeerEd25519 returns the Ed25519 public key a peer ID embeds.
func PeerEd25519(id peer.ID) (ed25519.PublicKey, error) {
	pub, ok := ed25519Key(id)
	if !ok {
		return nil, fmt.Errorf("peer ID %s does not embed an Ed25519 key", id)
	}
	return ed25519.PublicKey(pub), nil
}

// Ed25519Private returns a libp2p Ed25519 private key as crypto/ed25519's.
func Ed25519Private(key crypto.PrivKey) (ed25519.PrivateKey, error) {
	if key == nil || key.Type() != crypto.Ed25519 {
		return nil, errors.New("the key is not Ed25519")
	}
	raw, err := key.Raw()
	if err != nil {
		return nil, err
	}
	switch len(raw) {
	case ed25519.PrivateKeySize: // libp2p's form: seed, then public key
		return ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]), nil
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	}
	return nil, fmt.Errorf("an Ed25519 key of %d bytes", len(raw))
}

// noteKeyHash is a note key hash: the first 4 bytes, big-endian, of
// SHA-256(name || "\n" || alg || public key).
func noteKeyHash(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}
