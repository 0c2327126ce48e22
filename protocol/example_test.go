package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/mod/sumdb/note"

	"github.com/entente-net/entente/protocol"
)

// A platform revokes a consent it gave earlier: it signs a revocation
// record, and any node parses the bytes back, checking encoding, schema
// and signature. (Real keys come from crypto.GenerateEd25519Key; a fixed
// seed keeps the output stable.)
func ExampleSign() {
	seed := bytes.Repeat([]byte{0x04}, ed25519.SeedSize)
	key, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		panic(err)
	}
	consent, err := protocol.ParseCID("bafyreia64cmunzgewwzqchoou6z4snje6zxbe6kumn4hg7rzcoytcgyp6m")
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 11, 24, 10, 30, 0, 0, time.UTC)

	rec, err := protocol.Sign(key, protocol.Millis(at), &protocol.Revocation{
		Target:      protocol.LinkTo(consent),
		Reason:      "The data subject withdrew consent.",
		EffectiveAt: protocol.Millis(at.Add(30 * time.Minute)),
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("kind:  ", rec.Kind())
	fmt.Println("issuer:", rec.Issuer())
	fmt.Println("size:  ", len(rec.Bytes()), "bytes")
	fmt.Println("cid:   ", rec.CID())

	// What a receiving node does with the bytes.
	got, err := protocol.Parse(rec.Bytes())
	if err != nil {
		panic(err)
	}
	rv, _ := got.Revocation()
	fmt.Println("parsed:", got.CID().Equals(rec.CID()), rv.Target.Cid)

	// One flipped bit, and the record is refused with a stable code.
	tampered := bytes.Clone(rec.Bytes())
	tampered[len(tampered)-1] ^= 1
	_, err = protocol.Parse(tampered)
	fmt.Println("tampered:", protocol.CodeOf(err))
	// Output:
	// kind:   revocation
	// issuer: 12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw
	// size:   289 bytes
	// cid:    bafyreidewyhhkyu2bqz737rq6cz2im5oyyxdpdhebgfqfkf25hpstuokeq
	// parsed: true bafyreia64cmunzgewwzqchoou6z4snje6zxbe6kumn4hg7rzcoytcgyp6m
	// tampered: bad_signature
}

// An auditor checks a node's checkpoint with only the federation's name
// and the node's peer ID; golang.org/x/mod/sumdb/note alone does the same
// with the verifier key.
func ExampleOpenCheckpoint() {
	msg := []byte(`entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB
3
NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=

— entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB CtpFQ8rh3NoryvtkIJsDjjwQN8qq4YPA00nFiP53A1Q/eFSBciFqayPGwHDWTEdV4/yIv1FvwSU3eoX8xUlsx0sp1QY=
`)
	id, err := peer.Decode("12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB")
	if err != nil {
		panic(err)
	}
	cp, err := protocol.OpenCheckpoint(msg, "eu-latam-pilot", id)
	if err != nil {
		panic(err)
	}
	fmt.Println(cp.Size, cp.Root)

	vkey, err := protocol.CheckpointVerifierKey("eu-latam-pilot", id)
	if err != nil {
		panic(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		panic(err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		panic(err)
	}
	fmt.Print(vkey, "\n", n.Text)
	// Output:
	// 3 NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
	// entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB+0ada4543+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4
	// entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB
	// 3
	// NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
}
