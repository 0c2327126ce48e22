package node

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/entente-net/entente/store"
)

// A node signs checkpoints of its log (DESIGN.md §6) in the C2SP
// tlog-checkpoint format: a signed note (golang.org/x/mod/sumdb/note)
// whose text is three lines, each ending in a newline,
//
//	entente/<federation name>/<node peer ID>
//	<tree size, decimal>
//	<root hash, base64>
//
// signed with the node's Ed25519 key under the origin (the first line) as
// the key name. For example, a checkpoint of a tree of size 3 by node
// 12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB (the Ed25519 key
// whose seed is the bytes 0, 1, …, 31) of federation eu-latam-pilot:
//
//	entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB
//	3
//	C65pPpLZgjm4owaKUAjFZ7NtZDlYe7M6zcOzB2eWOp8=
//
//	— entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB CtpFQ2jUFxJqmktWpRoLA+6ia2bz6Fe1DZgerAR6l4/TK7082Ih8smaX/CF9UkGe48rtjGHRhQ4VHl+cxBWScNCakQg=
//
// The signature line holds, in base64, the key hash (4 bytes: 0ada4543)
// and the Ed25519 signature of the text (the three lines). The node's
// verifier key, which CheckpointVerifierKey derives from its peer ID, is
//
//	entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB+0ada4543+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4
//
// for note.NewVerifier and note.Open (ExampleOpenCheckpoint).
//
// A checkpoint covers only durable leaves (the store's TreeHead reads the
// last durable commit), and the node never signs two for one size: it
// signs only when the log grew past the latest checkpoint, and it keeps
// that checkpoint in the store, durably, before anyone sees it. At start
// the node checks the kept checkpoint against its log and refuses to
// start if they disagree.

// ErrEmptyLog is returned when a checkpoint is asked of a node whose log
// has no records: there is nothing to sign.
var ErrEmptyLog = errors.New("node: the log is empty")

// ErrMalformedCheckpoint is wrapped by the errors of ParseCheckpoint and
// OpenCheckpoint for a note that is not a checkpoint of the expected form.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// CheckpointOrigin is the origin line of node id's checkpoints in
// federation, which is also the name of their signature key.
func CheckpointOrigin(federation string, id peer.ID) string {
	return "entente/" + federation + "/" + id.String()
}

// Checkpoint is what a checkpoint states: a tree of a node's log.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
}

// Text is the checkpoint's note text, the bytes its signature covers.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + c.Root.String() + "\n"
}

// maxCheckpointText bounds the note text ParseCheckpoint reads: an origin
// of at most 128 bytes, a size, a root.
const maxCheckpointText = 256

// ParseCheckpoint parses a checkpoint's note text. It accepts only the
// form Text produces: exactly three lines, an origin that is a valid note
// key name, a size in canonical decimal that fits an int64, and a 32-byte
// root in padded standard base64. Extension lines are refused: entente's
// checkpoints have none.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: %s", ErrMalformedCheckpoint, fmt.Sprintf(format, args...))
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
	if !validNoteName(origin) || len(origin) > 128 {
		return bad("origin %q is not a key name (non-empty, at most 128 bytes, no spaces or '+')", origin)
	}
	c.Origin = origin
	n, err := strconv.ParseUint(size, 10, 63)
	if err != nil || strconv.FormatUint(n, 10) != size {
		return bad("size %q is not a canonical decimal", size)
	}
	c.Size = n
	h, err := base64.StdEncoding.Strict().DecodeString(root)
	if err != nil || len(h) != tlog.HashSize || len(root) != 44 {
		return bad("root %q is not a base64 32-byte hash", root)
	}
	copy(c.Root[:], h)
	return c, nil
}

// SignedCheckpoint is a checkpoint with the signed note that states it.
type SignedCheckpoint struct {
	Checkpoint
	Note []byte
}

// maxCheckpointNote bounds the note OpenCheckpoint reads.
const maxCheckpointNote = store.MaxCheckpointNote

// OpenCheckpoint verifies that msg is a checkpoint note of node id in
// federation, signed by the node's key, and returns it. Other signatures
// (cosignatures) may be present; they are not checked.
func OpenCheckpoint(msg []byte, federation string, id peer.ID) (SignedCheckpoint, error) {
	vkey, err := CheckpointVerifierKey(federation, id)
	if err != nil {
		return SignedCheckpoint{}, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("checkpoint verifier: %w", err)
	}
	return openCheckpoint(msg, v)
}

func openCheckpoint(msg []byte, v note.Verifier) (SignedCheckpoint, error) {
	if len(msg) > maxCheckpointNote {
		return SignedCheckpoint{}, fmt.Errorf("%w: note of %d bytes (at most %d)", ErrMalformedCheckpoint, len(msg), maxCheckpointNote)
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
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

// CheckpointVerifierKey is the note verifier key of node id's checkpoints
// in federation, as note.NewVerifier reads it:
// "<origin>+<key hash, 8 hex digits>+<base64 of 0x01 and the 32-byte
// Ed25519 public key>". The public key comes from the peer ID.
func CheckpointVerifierKey(federation string, id peer.ID) (string, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return "", fmt.Errorf("checkpoint verifier: peer ID %s: %w", id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return "", fmt.Errorf("checkpoint verifier: peer ID %s is not an Ed25519 key", id)
	}
	raw, err := pub.Raw()
	if err != nil {
		return "", fmt.Errorf("checkpoint verifier: %w", err)
	}
	name := CheckpointOrigin(federation, id)
	if !validNoteName(name) {
		return "", fmt.Errorf("checkpoint verifier: %q is not a note key name", name)
	}
	return noteVerifierKey(name, ed25519.PublicKey(raw)), nil
}

// noteAlgEd25519 is note's algorithm byte for Ed25519 keys.
const noteAlgEd25519 = 1

// noteKeyHash is note's key hash: the first 4 bytes, big-endian, of
// SHA-256(name, "\n", 0x01, public key).
func noteKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', noteAlgEd25519})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func noteVerifierKey(name string, pub ed25519.PublicKey) string {
	key := append([]byte{noteAlgEd25519}, pub...)
	return fmt.Sprintf("%s+%08x+%s", name, noteKeyHash(name, pub), base64.StdEncoding.EncodeToString(key))
}

// validNoteName is note's rule for key names: non-empty UTF-8 without
// spaces or '+'.
func validNoteName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// noteSigner is a note.Signer with a libp2p Ed25519 key.
type noteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func newNoteSigner(name string, key crypto.PrivKey) (*noteSigner, error) {
	if !validNoteName(name) {
		return nil, fmt.Errorf("note signer: %q is not a key name", name)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, errors.New("note signer: the key is not Ed25519")
	}
	raw, err := key.Raw()
	if err != nil {
		return nil, fmt.Errorf("note signer: %w", err)
	}
	var priv ed25519.PrivateKey
	switch len(raw) {
	case ed25519.PrivateKeySize: // libp2p's form: seed, then public key
		priv = ed25519.PrivateKey(raw)
	case ed25519.SeedSize:
		priv = ed25519.NewKeyFromSeed(raw)
	default:
		return nil, fmt.Errorf("note signer: Ed25519 key of %d bytes", len(raw))
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &noteSigner{name: name, hash: noteKeyHash(name, pub), key: priv}, nil
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// verifierKey is the signer's verifier key (see CheckpointVerifierKey).
func (s *noteSigner) verifierKey() string {
	return noteVerifierKey(s.name, s.key.Public().(ed25519.PublicKey))
}

// checkpointer signs the node's checkpoints and keeps the latest.
type checkpointer struct {
	store    *store.Store
	log      *slog.Logger
	signer   *noteSigner
	verifier note.Verifier
	signed   prometheus.Counter

	mu     sync.Mutex // held while signing and keeping a checkpoint
	latest atomic.Pointer[SignedCheckpoint]
}

// startCheckpoints loads the kept checkpoint, checking it against the
// log, and starts signing on the interval.
func (n *Node) startCheckpoints() error {
	signer, err := newNoteSigner(CheckpointOrigin(n.cfg.Federation.Name, n.id), n.cfg.Key)
	if err != nil {
		return fmt.Errorf("node: checkpoints: %w", err)
	}
	verifier, err := note.NewVerifier(signer.verifierKey())
	if err != nil {
		return fmt.Errorf("node: checkpoints: %w", err)
	}
	c := &checkpointer{
		store:    n.store,
		log:      n.log.With("component", "checkpoints"),
		signer:   signer,
		verifier: verifier,
		signed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_checkpoints_signed_total",
			Help: "Checkpoints of the log this node signed.",
		}),
	}
	if err := c.load(); err != nil {
		return err
	}
	n.checkpoints = c
	n.metrics.reg.MustRegister(c.signed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_size",
			Help: "Records in the node's log (durable).",
		}, func() float64 { return float64(n.store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_log_checkpoint_size",
			Help: "Size of the latest checkpoint this node signed.",
		}, func() float64 { return float64(c.latestSize()) }),
	)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c.run(n.ctx, n.cfg.CheckpointInterval)
	}()
	return nil
}

// load takes the kept checkpoint as the latest, after checking it: the
// store checks its tree against the log, and load that its note is this
// node's, signed, and states that tree.
func (c *checkpointer) load() error {
	kept, ok, err := c.store.LastCheckpoint()
	if errors.Is(err, store.ErrCheckpointMismatch) {
		return fmt.Errorf("node: refusing to start: %w; the log no longer holds the records this node signed (was the store restored from an older copy, or changed?)", err)
	}
	if err != nil {
		return fmt.Errorf("node: reading the last signed checkpoint: %w", err)
	}
	if !ok {
		return nil
	}
	sc, err := openCheckpoint(kept.Note, c.verifier)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		if other, perr := ParseCheckpoint(unverified.Note.Text); perr == nil && other.Origin != c.signer.Name() {
			// Signed under another identity (the node's key or the
			// federation's name changed): not this origin's checkpoint.
			c.log.Warn("the store's last checkpoint was signed under another origin; ignoring it",
				"origin", other.Origin, "size", other.Size)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("node: refusing to start: the last signed checkpoint in the store does not verify: %w", err)
	}
	if sc.Size != kept.Size || sc.Root != kept.Root {
		return fmt.Errorf("node: refusing to start: %w: the last signed checkpoint's note states size %d root %s, the store kept it for size %d root %s",
			store.ErrCheckpointMismatch, sc.Size, sc.Root, kept.Size, kept.Root)
	}
	c.latest.Store(&sc)
	c.log.Debug("checkpoint loaded", "size", sc.Size, "root", sc.Root.String())
	return nil
}

// run signs a checkpoint now and then every interval, when the log grew.
func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.sign(); err != nil && !errors.Is(err, ErrEmptyLog) && ctx.Err() == nil {
			c.log.Error("signing a checkpoint failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sign signs a checkpoint of the durable log if it grew past the latest
// checkpoint, keeps it durably, and only then makes it the latest. It
// returns the latest checkpoint, new or not.
func (c *checkpointer) sign() (SignedCheckpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	th, err := c.store.TreeHead()
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("node: checkpoint: %w", err)
	}
	latest := c.latest.Load()
	switch {
	case latest != nil && th.Size == latest.Size:
		return *latest, nil
	case latest != nil && th.Size < latest.Size:
		// The store checked the kept checkpoint against the log at start
		// and the log only grows: this is a bug, not a state to serve.
		return SignedCheckpoint{}, fmt.Errorf("node: checkpoint: the log has %d records, the latest checkpoint %d", th.Size, latest.Size)
	case th.Size == 0:
		return SignedCheckpoint{}, ErrEmptyLog
	}
	cp := Checkpoint{Origin: c.signer.Name(), Size: th.Size, Root: th.Root}
	msg, err := note.Sign(&note.Note{Text: cp.Text()}, c.signer)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("node: signing checkpoint %d: %w", th.Size, err)
	}
	if err := c.store.SaveCheckpoint(store.Checkpoint{Size: th.Size, Root: th.Root, Note: msg}); err != nil {
		return SignedCheckpoint{}, fmt.Errorf("node: keeping checkpoint %d: %w", th.Size, err)
	}
	sc := &SignedCheckpoint{Checkpoint: cp, Note: msg}
	c.latest.Store(sc)
	c.signed.Inc()
	c.log.Debug("checkpoint signed", "size", th.Size, "root", th.Root.String())
	return *sc, nil
}

// latestSize is the size of the latest checkpoint, 0 before the first.
func (c *checkpointer) latestSize() uint64 {
	if sc := c.latest.Load(); sc != nil {
		return sc.Size
	}
	return 0
}

// LatestCheckpoint returns the node's latest signed checkpoint, signing
// one first if the node has signed none yet; ErrEmptyLog while the log is
// empty. The node signs a newer one every Config.CheckpointInterval when
// its log grew.
func (n *Node) LatestCheckpoint() (SignedCheckpoint, error) {
	if n.ctx.Err() != nil {
		return SignedCheckpoint{}, ErrClosed
	}
	if sc := n.checkpoints.latest.Load(); sc != nil {
		return *sc, nil
	}
	return n.checkpoints.sign()
}

// SignCheckpoint signs a checkpoint of the log as it is durable now,
// unless the latest checkpoint covers it already, and returns the latest
// checkpoint. It is for callers that need the newest records covered now
// (tests, receipts); the node signs on its own every CheckpointInterval.
func (n *Node) SignCheckpoint() (SignedCheckpoint, error) {
	if n.ctx.Err() != nil {
		return SignedCheckpoint{}, ErrClosed
	}
	return n.checkpoints.sign()
}

// logStatus is the log as GET /v1/status shows it.
func (n *Node) logStatus() LogStatus {
	st := LogStatus{Size: n.store.Len()}
	if th, err := n.store.TreeHead(); err == nil {
		st.Size = th.Size
		if th.Size > 0 {
			st.Root = th.Root.String()
		}
	}
	if n.checkpoints != nil {
		st.CheckpointSize = n.checkpoints.latestSize()
	}
	return st
}
