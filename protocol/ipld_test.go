package protocol

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/fluent/qp"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	"github.com/ipld/go-ipld-prime/node/basicnode"
	mh "github.com/multiformats/go-multihash"
)

// recordLinkPrototype makes record IDs the go-ipld-prime way.
var recordLinkPrototype = cidlink.LinkPrototype{Prefix: cid.Prefix{
	Version: 1, Codec: CodecDagCBOR, MhType: mh.SHA2_256, MhLength: 32,
}}

// TestIPLDDecodesGolden: go-ipld-prime's DAG-CBOR codec reads every golden
// record and writes it back byte for byte, and computes the same CID.
func TestIPLDDecodesGolden(t *testing.T) {
	var index []goldenEntry
	readJSON(t, filepath.Join(goldenDir, "vectors.json"), &index)
	lsys := cidlink.DefaultLinkSystem()
	for _, e := range index {
		t.Run(e.Name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(goldenDir, e.Name+".cbor"))
			if err != nil {
				t.Fatal(err)
			}
			nb := basicnode.Prototype.Any.NewBuilder()
			if err := (dagcbor.DecodeOptions{AllowLinks: true, DontParseBeyondEnd: false}).Decode(nb, bytes.NewReader(raw)); err != nil {
				t.Fatalf("go-ipld-prime decode: %v", err)
			}
			n := nb.Build()
			var out bytes.Buffer
			if err := dagcbor.Encode(n, &out); err != nil {
				t.Fatalf("go-ipld-prime encode: %v", err)
			}
			if !bytes.Equal(out.Bytes(), raw) {
				t.Fatalf("go-ipld-prime re-encodes differently:\nours %x\nipld %x", raw, out.Bytes())
			}
			l, err := lsys.ComputeLink(recordLinkPrototype, n)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.(cidlink.Link).Cid.String(); got != e.CID {
				t.Errorf("go-ipld-prime computes CID %s, want %s", got, e.CID)
			}
		})
	}
}

// TestIPLDBuiltRecordParses makes a revocation entirely with go-ipld-prime
// (keys given out of order, for its encoder to sort), signs its encoding,
// and checks that Parse accepts it with the CID go-ipld-prime computes,
// and that Sign makes the very same bytes.
func TestIPLDBuiltRecordParses(t *testing.T) {
	key := seedKey(seedControllerDE)
	target := fakeCID("a consent")
	issuedAt := t0 + 30*minute

	fields := func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "issued_at", qp.Int(issuedAt))
		qp.MapEntry(ma, "issuer", qp.String(keyID(key).String()))
		qp.MapEntry(ma, "body", qp.Map(3, func(ma datamodel.MapAssembler) {
			qp.MapEntry(ma, "target", qp.Link(cidlink.Link{Cid: target}))
			qp.MapEntry(ma, "reason", qp.String("The data subject withdrew consent."))
			qp.MapEntry(ma, "effective_at", qp.Int(t0+hour))
		}))
		qp.MapEntry(ma, "kind", qp.String("revocation"))
		qp.MapEntry(ma, "v", qp.Int(1))
	}
	unsigned, err := qp.BuildMap(basicnode.Prototype.Any, 5, fields)
	if err != nil {
		t.Fatal(err)
	}
	var enc bytes.Buffer
	if err := dagcbor.Encode(unsigned, &enc); err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(append([]byte(SignatureDomain+"\x00"), enc.Bytes()...))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := qp.BuildMap(basicnode.Prototype.Any, 6, func(ma datamodel.MapAssembler) {
		qp.MapEntry(ma, "sig", qp.Bytes(sig))
		fields(ma)
	})
	if err != nil {
		t.Fatal(err)
	}
	var full bytes.Buffer
	if err := dagcbor.Encode(signed, &full); err != nil {
		t.Fatal(err)
	}
	lsys := cidlink.DefaultLinkSystem()
	l, err := lsys.ComputeLink(recordLinkPrototype, signed)
	if err != nil {
		t.Fatal(err)
	}
	ipldCID := l.(cidlink.Link).Cid

	r, err := Parse(full.Bytes())
	if err != nil {
		t.Fatalf("Parse of go-ipld-prime's record: %v\n%x", err, full.Bytes())
	}
	if !r.CID().Equals(ipldCID) {
		t.Errorf("CID %s, go-ipld-prime computes %s", r.CID(), ipldCID)
	}
	if sum, _ := recordLinkPrototype.Prefix.Sum(full.Bytes()); !r.CID().Equals(sum) {
		t.Errorf("CID %s, go-cid computes %s over the bytes", r.CID(), sum)
	}
	if !bytes.Equal(r.SigningInput()[len(SignatureDomain)+1:], enc.Bytes()) {
		t.Error("our signing input differs from go-ipld-prime's encoding of the unsigned map")
	}
	ours := mustSign(t, key, issuedAt, &Revocation{
		Target: LinkTo(target), Reason: "The data subject withdrew consent.", EffectiveAt: t0 + hour,
	})
	if !bytes.Equal(ours.Bytes(), full.Bytes()) {
		t.Errorf("Sign and go-ipld-prime make different bytes:\nours %x\nipld %x", ours.Bytes(), full.Bytes())
	}
}
