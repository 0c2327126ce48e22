package node

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/store"
)

// Cosignatures are C2SP tlog-cosignature "cosignature/v1" note
// signatures (signature type 0x04). A witness named W (its own checkpoint
// origin, CheckpointOrigin(federation, witness ID)) signs, with its
// Ed25519 key, the message
//
//	"cosignature/v1\ntime <decimal unix seconds>\n" || checkpoint body
//
// where the body is the note text up to and excluding the blank line. The
// note signature line is
//
//	— W base64(key ID (4 bytes) || time (8 bytes, big-endian) || signature (64 bytes))
//
// with key ID the first 4 bytes of SHA-256(W || "\n" || 0x04 || public
// key). note.Open ignores such lines (their key ID is not the origin's),
// so a cosigned checkpoint still opens with the origin's verifier.

// ErrBadCosignature is wrapped by the errors of VerifyCosignature.
var ErrBadCosignature = errors.New("bad cosignature")

const (
	cosignatureAlg = 0x04
	// maxCosignatures bounds the cosignature lines a node keeps on its
	// checkpoint, one per witness, the latest.
	maxCosignatures = 32
)

func cosignatureKeyID(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', cosignatureAlg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosignatureMessage(body []byte, ts uint64) []byte {
	m := []byte("cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n")
	return append(m, body...)
}

// cosignatureLine is the signature line of a cosignature by name with key
// over the checkpoint body at t.
func cosignatureLine(name string, key ed25519.PrivateKey, body []byte, t time.Time) string {
	ts := uint64(t.Unix())
	sig := binary.BigEndian.AppendUint32(nil, cosignatureKeyID(name, key.Public().(ed25519.PublicKey)))
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(key, cosignatureMessage(body, ts))...)
	return "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// splitNote splits a note into its body (text, without the blank line)
// and its signature lines (each with its newline).
func splitNote(msg []byte) (body []byte, lines []string, err error) {
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

func peerEd25519(id peer.ID) (ed25519.PublicKey, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer ID %s: %w", id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("peer ID %s is not an Ed25519 key", id)
	}
	raw, err := pub.Raw()
	if err != nil {
		return nil, err
	}
	return ed25519.PublicKey(raw), nil
}

// VerifyCosignature checks that noteText carries a valid cosignature/v1
// cosignature of witness witnessID of federation over its body and returns
// the time it states. It does not check the note's other signatures.
func VerifyCosignature(noteText []byte, federation string, witnessID peer.ID) (time.Time, error) {
	t, _, err := verifyCosignature(noteText, federation, witnessID)
	return t, err
}

func verifyCosignature(msg []byte, federation string, witnessID peer.ID) (time.Time, string, error) {
	if len(msg) > maxCheckpointNote {
		return time.Time{}, "", fmt.Errorf("%w: note of %d bytes", ErrBadCosignature, len(msg))
	}
	pub, err := peerEd25519(witnessID)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	name := CheckpointOrigin(federation, witnessID)
	id := cosignatureKeyID(name, pub)
	body, lines, err := splitNote(msg)
	if err != nil {
		return time.Time{}, "", err
	}
	for _, line := range lines {
		n, sig, ok := sigLine(line)
		if !ok || n != name || len(sig) != 4+8+ed25519.SignatureSize || binary.BigEndian.Uint32(sig) != id {
			continue
		}
		ts := binary.BigEndian.Uint64(sig[4:])
		if ts > 1<<62 {
			continue
		}
		if ed25519.Verify(pub, cosignatureMessage(body, ts), sig[12:]) {
			return time.Unix(int64(ts), 0).UTC(), line, nil
		}
	}
	return time.Time{}, "", fmt.Errorf("%w: no valid cosignature of %s", ErrBadCosignature, name)
}

// ErrStaleCosignature is returned by AddCosignature for a cosignature of
// a checkpoint that is not the node's latest.
var ErrStaleCosignature = errors.New("node: cosignature of a checkpoint that is not the latest")

// AddCosignature verifies msg, this node's checkpoint note carrying a
// cosignature of witness (a federation member), and, when it is of the
// node's latest checkpoint, keeps that checkpoint's note with the
// cosignature added: one line per witness, the latest, at most
// maxCosignatures (the oldest are dropped).
func (n *Node) AddCosignature(witness peer.ID, msg []byte) error {
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	if witness == n.id {
		return fmt.Errorf("%w: a cosignature by the node itself", ErrBadCosignature)
	}
	if !n.trust.isMember(witness, n.cfg.Now().UnixMilli()) {
		return fmt.Errorf("%w: %s is not a member of the federation", ErrBadCosignature, witness)
	}
	_, line, err := verifyCosignature(msg, n.cfg.Federation.Name, witness)
	if err != nil {
		return err
	}
	sc, err := openCheckpoint(msg, n.checkpoints.verifier)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	c := n.checkpoints
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := c.latest.Load()
	if latest == nil || latest.Size != sc.Size || latest.Root != sc.Root {
		return ErrStaleCosignature
	}
	body, lines, err := splitNote(latest.Note)
	if err != nil {
		return err
	}
	wname := CheckpointOrigin(n.cfg.Federation.Name, witness)
	var own, cosigs []string
	for _, l := range lines {
		name, _, ok := sigLine(l)
		switch {
		case !ok:
		case name == c.signer.Name():
			own = append(own, l)
		case name != wname:
			cosigs = append(cosigs, l)
		}
	}
	cosigs = append(cosigs, line)
	if len(cosigs) > maxCosignatures {
		cosigs = cosigs[len(cosigs)-maxCosignatures:]
	}
	out := append(append([]byte{}, body...), '\n')
	for _, l := range append(own, cosigs...) {
		out = append(out, l...)
	}
	if len(out) > maxCheckpointNote {
		return fmt.Errorf("%w: the cosigned note would be %d bytes", ErrBadCosignature, len(out))
	}
	if err := c.store.SaveCheckpoint(store.Checkpoint{Size: latest.Size, Root: latest.Root, Note: out}); err != nil {
		return fmt.Errorf("node: keeping a cosigned checkpoint: %w", err)
	}
	c.latest.Store(&SignedCheckpoint{Checkpoint: latest.Checkpoint, Note: out})
	return nil
}
