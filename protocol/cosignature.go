package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Cosignatures are C2SP tlog-cosignature "cosignature/v1" note signatures
// (package doc, "Checkpoints and cosignatures"). They are verified with
// github.com/transparency-dev/formats/note. They are made here, because
// that package's signer reads the wall clock, and a node signs at its own
// clock (injected in tests; fixed in the golden vectors).

// ErrBadCosignature is wrapped by the errors of VerifyCosignature and
// MergeCosignature.
var ErrBadCosignature = errors.New("bad cosignature")

const (
	// cosignatureAlg is the key hash's algorithm byte of cosignature/v1.
	cosignatureAlg = 0x04
	// MaxCosignatures bounds the cosignature lines a node keeps on its
	// checkpoint, one per witness, the latest.
	MaxCosignatures = 32
)

// Cosign returns a checkpoint note that a witness verified (nt, as
// note.Open gave it, with the log's signature) with the witness's
// cosignature at t added.
func (s *CheckpointSigner) Cosign(nt *note.Note, t time.Time) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: nt.Text, Sigs: nt.Sigs})
	if err != nil {
		return nil, fmt.Errorf("cosigning: %w", err)
	}
	return append(signed, CosignatureLine(s.Name(), s.key, []byte(nt.Text), t)...), nil
}

// CosignatureLine is the note signature line of a cosignature/v1 by the
// witness named name, with key, over a checkpoint's note text at t:
//
//	— <name> base64(key ID (4 bytes) || time (8 bytes, big-endian) || signature (64 bytes))
//
// The key ID is the first 4 bytes of SHA-256(name || "\n" || 0x04 ||
// public key), and the signature is over "cosignature/v1\ntime <t in
// decimal Unix seconds>\n" followed by the note text.
func CosignatureLine(name string, key ed25519.PrivateKey, text []byte, t time.Time) string {
	ts := uint64(t.Unix())
	pub := key.Public().(ed25519.PublicKey)
	sig := binary.BigEndian.AppendUint32(nil, noteKeyHash(name, cosignatureAlg, pub))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	msg := append([]byte("cosignature/v1\ntime "+strconv.FormatUint(ts, 10)+"\n"), text...)
	sig = append(sig, ed25519.Sign(key, msg)...)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// VerifyCosignature checks that msg, a checkpoint note, carries a valid
// cosignature/v1 of witness (a node of federation, named by its
// checkpoint origin) and returns the time it states and its signature
// line. It does not check the note's other signatures.
func VerifyCosignature(msg []byte, federation string, witness peer.ID) (time.Time, string, error) {
	if len(msg) > MaxCheckpointNote {
		return time.Time{}, "", fmt.Errorf("%w: note of %d bytes", ErrBadCosignature, len(msg))
	}
	vkey, err := CheckpointVerifierKey(federation, witness)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	nt, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: no valid cosignature of %s: %v", ErrBadCosignature, v.Name(), err)
	}
	for _, s := range nt.Sigs {
		if s.Name != v.Name() || s.Hash != v.KeyHash() {
			continue
		}
		t, err := fnote.CoSigV1Timestamp(s)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("%w: %v", ErrBadCosignature, err)
		}
		return t.UTC(), "— " + s.Name + " " + s.Base64 + "\n", nil
	}
	return time.Time{}, "", fmt.Errorf("%w: no valid cosignature of %s", ErrBadCosignature, v.Name())
}

// MergeCosignature returns latest, a node's checkpoint note, with a
// witness's cosignature line added: the node's own signature lines (of
// its origin) first, then the cosignatures of other witnesses as they
// were, then this one, replacing an earlier one of the same witness; at
// most MaxCosignatures, the oldest dropped.
func MergeCosignature(latest []byte, line string) ([]byte, error) {
	body, lines, err := splitNote(latest)
	if err != nil {
		return nil, err
	}
	origin, err := ParseCheckpoint(string(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	witness, _, ok := sigLine(line)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a note signature line", ErrBadCosignature, line)
	}
	var own, cosigs []string
	for _, l := range lines {
		name, _, ok := sigLine(l)
		switch {
		case !ok:
		case name == origin.Origin:
			own = append(own, l)
		case name != witness:
			cosigs = append(cosigs, l)
		}
	}
	cosigs = append(cosigs, line)
	if len(cosigs) > MaxCosignatures {
		cosigs = cosigs[len(cosigs)-MaxCosignatures:]
	}
	out := append(append([]byte{}, body...), '\n')
	for _, l := range append(own, cosigs...) {
		out = append(out, l...)
	}
	if len(out) > MaxCheckpointNote {
		return nil, fmt.Errorf("%w: the cosigned note would be %d bytes", ErrBadCosignature, len(out))
	}
	return out, nil
}

// splitNote splits a signed note into its text (without the blank line)
// and its signature lines (each with its newline).
func splitNote(msg []byte) (text []byte, lines []string, err error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 || i+2 >= len(msg) || msg[len(msg)-1] != '\n' {
		return nil, nil, fmt.Errorf("%w: not a signed note", ErrBadCosignature)
	}
	lines = strings.SplitAfter(string(msg[i+2:]), "\n")
	return msg[:i+1], lines[:len(lines)-1], nil
}

// sigLine parses a note signature line into its key name and decoded
// signature.
func sigLine(line string) (name string, sig []byte, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "— ")
	if !found {
		return "", nil, false
	}
	name, b64, found := strings.Cut(rest, " ")
	if !found || name == "" {
		return "", nil, false
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	return name, sig, err == nil
}
