package protocol

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// MaxDecisions bounds the decisions one receipt signs (a verify-batch).
const MaxDecisions = 1000

// MaxDecisionBlock bounds a decision block's encoding.
const MaxDecisionBlock = 64 << 10

// DecisionBlock is one verdict of a receipt (DESIGN.md §4): an unsigned
// DAG-CBOR block, named by its CID (CIDv1, dag-cbor, sha2-256 of its
// encoding, as a record's), that a receipt's decisions link to. The
// receipt's signature covers the links and so every block. Blocks are
// stored and travel with their receipt; a bundle carries the block of its
// decision alone, so that one decision never shows its siblings beyond
// their CIDs.
type DecisionBlock struct {
	Request  TransferRequest `cbor:"request"`
	Verdict  string          `cbor:"verdict"`
	Checks   []Check         `cbor:"checks"`
	Evidence []Link          `cbor:"evidence"`
}

// Block is the decision block of d, the decision of req.
func (d *Decision) Block(req TransferRequest) *DecisionBlock {
	return &DecisionBlock{Request: req, Verdict: d.Verdict, Checks: d.Checks, Evidence: d.Evidence}
}

// Encode returns the block's canonical encoding and CID, after validating
// it.
func (b *DecisionBlock) Encode() ([]byte, cid.Cid, error) {
	if err := b.validate("decision"); err != nil {
		return nil, cid.Undef, err
	}
	enc, err := encMode.Marshal(b)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("encode decision: %w", err)
	}
	if len(enc) > MaxDecisionBlock {
		return nil, cid.Undef, errf(CodeTooLarge, "decision", "a decision block of %d bytes, over the %d-byte limit", len(enc), MaxDecisionBlock)
	}
	return enc, RecordCID(enc), nil
}

// DecodeDecisionBlock parses a decision block: the canonical encoding of a
// valid one, at most MaxDecisionBlock bytes. Errors are *Error, with
// field paths from "decision".
func DecodeDecisionBlock(b []byte) (*DecisionBlock, error) {
	if len(b) > MaxDecisionBlock {
		return nil, errf(CodeTooLarge, "decision", "a decision block of %d bytes, over the %d-byte limit", len(b), MaxDecisionBlock)
	}
	var blk DecisionBlock
	if err := decodeStrict(b, &blk, "decision"); err != nil {
		return nil, err
	}
	if err := blk.validate("decision"); err != nil {
		return nil, err
	}
	return &blk, nil
}

// NewReceipt is the body of a receipt that signs the decision blocks
// named by decisions, in request order, at the log's tree cp (the node's
// log just before the receipt's leaf).
func NewReceipt(decisions []cid.Cid, cp Checkpoint) *Receipt {
	links := make([]Link, len(decisions))
	for i, c := range decisions {
		links[i] = LinkTo(c)
	}
	return &Receipt{Decisions: links, Checkpoint: cp}
}
