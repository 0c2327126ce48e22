package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestExampleKeyIsTheDocumentedOne: the example node of the package doc
// is the Ed25519 key whose seed is 0, 1, ..., 31.
func TestExampleKeyIsTheDocumentedOne(t *testing.T) {
	if id := keyID(keyFromSeed(exampleNodeSeed())); id.String() != "12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB" {
		t.Fatalf("seed 0..31 is peer %s", id)
	}
}

// TestCheckpointOpens: the signed note opens with x/mod's verifier built
// from the verifier key, with OpenCheckpoint, and with nothing else.
func TestCheckpointOpens(t *testing.T) {
	s, sc := exampleCheckpoint(t)
	id := keyID(keyFromSeed(exampleNodeSeed()))
	vkey, err := CheckpointVerifierKey(exampleFederation, id)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(sc.Note, note.VerifierList(v))
	if err != nil || n.Text != sc.Text() {
		t.Fatalf("note.Open: %v", err)
	}
	got, err := OpenCheckpoint(sc.Note, exampleFederation, id)
	if err != nil || got.LogCheckpoint != sc.LogCheckpoint {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
	if s.Verifier().KeyHash() != v.KeyHash() || s.Verifier().Name() != s.Name() {
		t.Error("the signer's verifier is not the one of the verifier key")
	}
	other := keyID(seedKey(seedStranger))
	for name, open := range map[string]func() error{
		"another node":       func() error { _, err := OpenCheckpoint(sc.Note, exampleFederation, other); return err },
		"another federation": func() error { _, err := OpenCheckpoint(sc.Note, "other", id); return err },
		"too large": func() error {
			_, err := OpenCheckpoint(append(bytes.Repeat([]byte("x"), MaxCheckpointNote), sc.Note...), exampleFederation, id)
			return err
		},
	} {
		if open() == nil {
			t.Errorf("%s: opened", name)
		}
	}
	for i := range sc.Note {
		bent := bytes.Clone(sc.Note)
		bent[i] ^= 0x01
		if _, err := OpenCheckpoint(bent, exampleFederation, id); err == nil {
			t.Fatalf("opened the note with byte %d changed:\n%s", i, bent)
		}
	}
	// A note signed under another origin than its text states.
	wrong, err := note.Sign(&note.Note{Text: LogCheckpoint{Origin: "entente/x/y", Size: 1}.Text()}, s.Signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenCheckpointWith(wrong, s.Verifier()); !errors.Is(err, ErrMalformedCheckpoint) {
		t.Errorf("a note whose origin is not its key's: %v", err)
	}
}

func TestCheckpointSignerRefusesAnotherOrigin(t *testing.T) {
	s, _ := exampleCheckpoint(t)
	if _, err := s.Sign(LogCheckpoint{Origin: "entente/other/x", Size: 1}); err == nil {
		t.Fatal("signed a checkpoint of another origin")
	}
}

func TestParseCheckpointAccepts(t *testing.T) {
	root := tlog.RecordHash([]byte("r")).String()
	c, err := ParseCheckpoint("o\n0\n" + root + "\n")
	if err != nil || c.Size != 0 || c.Origin != "o" || c.Root.String() != root {
		t.Fatalf("ParseCheckpoint of a well-formed text: %+v, %v", c, err)
	}
}

// TestCosignature: the golden cosigned note carries a cosignature that
// transparency-dev/formats verifies, with the time it was made; changes
// to the text, time or signature, another key or federation are refused.
func TestCosignature(t *testing.T) {
	msg := exampleCosigned(t)
	witness := keyID(seedKey(seedNodeDE))
	at, line, err := VerifyCosignature(msg, exampleFederation, witness)
	if err != nil || !at.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("VerifyCosignature: %v %v", at, err)
	}
	if !strings.HasSuffix(string(msg), line) {
		t.Errorf("the line returned is not the note's last: %q", line)
	}
	// The reference verifier, independently of VerifyCosignature.
	vkey, _ := CheckpointVerifierKey(exampleFederation, witness)
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatalf("formats' verifier refuses the cosignature: %v", err)
	}
	// The log's own signature is still there, and still verifies.
	if _, err := OpenCheckpoint(msg, exampleFederation, keyID(keyFromSeed(exampleNodeSeed()))); err != nil {
		t.Fatalf("the cosigned note no longer opens as the log's: %v", err)
	}
	_, sc := exampleCheckpoint(t)
	key, _ := Ed25519Private(seedKey(seedNodeDE))
	_, otherKey, _ := ed25519.GenerateKey(nil)
	name := CheckpointOrigin(exampleFederation, witness)
	for what, m := range map[string][]byte{
		"text changed":   []byte(strings.Replace(string(msg), "\n3\n", "\n4\n", 1)),
		"sig changed":    []byte(strings.Replace(string(msg), line, line[:len(line)-10]+"AAAAAAAAA\n", 1)),
		"no cosignature": sc.Note,
		"another key":    append(bytes.Clone(sc.Note), CosignatureLine(name, otherKey, []byte(sc.Text()), time.Unix(1, 0))...),
		"time changed":   append(bytes.Clone(sc.Note), retimed(t, CosignatureLine(name, key, []byte(sc.Text()), time.Unix(1700000000, 0)))...),
	} {
		if _, _, err := VerifyCosignature(m, exampleFederation, witness); !errors.Is(err, ErrBadCosignature) {
			t.Errorf("%s: %v", what, err)
		}
	}
	if _, _, err := VerifyCosignature(msg, "other-fed", witness); !errors.Is(err, ErrBadCosignature) {
		t.Errorf("another federation: %v", err)
	}
}

// TestMergeCosignature: one line per witness, the latest; the log's own
// signature first; at most MaxCosignatures.
func TestMergeCosignature(t *testing.T) {
	_, sc := exampleCheckpoint(t)
	line := func(seed byte, at int64) string {
		k, _ := Ed25519Private(seedKey(seed))
		return CosignatureLine(CheckpointOrigin(exampleFederation, keyID(seedKey(seed))), k, []byte(sc.Text()), time.Unix(at, 0))
	}
	out, err := MergeCosignature(sc.Note, line(seedNodeDE, 1))
	if err != nil {
		t.Fatal(err)
	}
	out, err = MergeCosignature(out, line(seedFoundingDE, 2))
	if err != nil {
		t.Fatal(err)
	}
	out, err = MergeCosignature(out, line(seedNodeDE, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := string(sc.Note) + line(seedFoundingDE, 2) + line(seedNodeDE, 3)
	if string(out) != want {
		t.Fatalf("merged note\n%s\nwant\n%s", out, want)
	}
	for i := 0; i < MaxCosignatures+5; i++ {
		k, _ := Ed25519Private(keyFromSeed(bytes.Repeat([]byte{byte(0x40 + i)}, 32)))
		name := fmt.Sprintf("entente/%s/w%d", exampleFederation, i)
		if out, err = MergeCosignature(out, CosignatureLine(name, k, []byte(sc.Text()), time.Unix(int64(i), 0))); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(string(out), "\n— ") - 1; n != MaxCosignatures {
		t.Errorf("%d cosignatures kept, want %d", n, MaxCosignatures)
	}
	if _, err := OpenCheckpoint(out, exampleFederation, keyID(keyFromSeed(exampleNodeSeed()))); err != nil {
		t.Errorf("the merged note no longer opens: %v", err)
	}
	if _, err := MergeCosignature([]byte("not a note"), line(seedNodeDE, 1)); err == nil {
		t.Error("merged into a text that is not a note")
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	_, sc := exampleCheckpoint(f)
	f.Add(sc.Text())
	for _, b := range wireSeeds(f, "checkpoint-text") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCheckpoint(text)
		if err != nil {
			if !errors.Is(err, ErrMalformedCheckpoint) {
				t.Fatalf("error %v does not wrap ErrMalformedCheckpoint", err)
			}
			return
		}
		if again := c.Text(); again != text {
			t.Fatalf("accepted %q, which formats as %q", text, again)
		}
	})
}

// FuzzOpenCheckpoint: opening a checkpoint note, verifying a
// cosignature on it and merging one into it never panic, whatever the
// bytes; what merges still opens as the log's checkpoint.
func FuzzOpenCheckpoint(f *testing.F) {
	_, sc := exampleCheckpoint(f)
	f.Add(sc.Note)
	f.Add(exampleCosigned(f))
	id := keyID(keyFromSeed(exampleNodeSeed()))
	witness := keyID(seedKey(seedNodeDE))
	f.Fuzz(func(t *testing.T, msg []byte) {
		opened, openErr := OpenCheckpoint(msg, exampleFederation, id)
		_, line, err := VerifyCosignature(msg, exampleFederation, witness)
		if err != nil || openErr != nil {
			return
		}
		merged, err := MergeCosignature(opened.Note, line)
		if err != nil {
			return
		}
		if _, err := OpenCheckpoint(merged, exampleFederation, id); err != nil {
			t.Fatalf("merging %q into %q made a note that does not open: %v", line, msg, err)
		}
	})
}

// retimed is a cosignature line whose stated time is one second later
// than the one signed.
func retimed(t *testing.T, line string) string {
	name, sig, ok := sigLine(line)
	if !ok || len(sig) != 4+8+ed25519.SignatureSize {
		t.Fatalf("not a cosignature line: %q", line)
	}
	sig[11]++
	return "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}
