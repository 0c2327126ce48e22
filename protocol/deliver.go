package protocol

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Direct delivery (/entente/deliver/1.0.0, DESIGN.md §6 "Direct
// delivery"): a node pushes a record only some jurisdictions' nodes may
// receive (Audience.Delivered) to each of those nodes, and each answers
// with an acknowledgement signed by its node key (package doc, "Wire
// protocols").

// DeliverProtocolID pushes a record to a node of its audience.
const DeliverProtocolID = "/entente/deliver/1.0.0"

// DeliverAckDomain separates acknowledgement signatures from every other
// signature a node key makes.
const DeliverAckDomain = "entente/deliver-ack/v1"

// Sizes of the delivery messages.
const (
	// DeliverMaxBlocks bounds the decision blocks one delivery request
	// carries, in bytes (a batch of 1 000 typical decisions, ~2.5 KB each,
	// fits); a receipt whose blocks for one jurisdiction are over it is
	// not delivered (the sender logs it, and members fetch it by CID).
	DeliverMaxBlocks = 3 << 20
	// DeliverMaxRequest bounds a delivery request: a frame holding a
	// record, then frames of decision blocks.
	DeliverMaxRequest = MaxVarintLen + MaxRecordSize + DeliverMaxBlocks + MaxDecisions*MaxVarintLen
	// DeliverAnswerSize is the size of an acknowledgement on the wire:
	// status, code length, code, time, signature.
	DeliverAnswerSize = 1 + 1 + 2 + 8 + ed25519.SignatureSize
	// DeliverMaxAnswer bounds a delivery answer.
	DeliverMaxAnswer = DeliverAnswerSize

	deliverStatusAck     = 0x00
	deliverStatusRefused = 0x01
)

// Errors of delivery.
var (
	ErrDeliverRequest = errors.New("deliver: request is not a frame holding a record, then frames of decision blocks")
	ErrDeliverAnswer  = errors.New("deliver: answer is neither an acknowledgement (status 0) nor a refusal (status 1)")
	// ErrDeliverAck is wrapped by the error of an acknowledgement whose
	// signature does not verify against the node that should have made
	// it.
	ErrDeliverAck = errors.New("deliver: acknowledgement signature does not verify")
)

// DeliveryAck is a node's acknowledgement that it holds a record
// durably: its signature, by the node's key, over DeliveryAckInput.
type DeliveryAck struct {
	Record       cid.Cid // the record acknowledged (a record ID)
	Jurisdiction string  // the jurisdiction the node acknowledges for (its own)
	At           int64   // when, Unix milliseconds, >= 0
	Sig          []byte  // 64 bytes
}

// DeliveryAckInput is what an acknowledgement signs: the ASCII string
// "entente/deliver-ack/v1", a zero byte, the record's 36-byte binary
// CID, one byte giving the jurisdiction code's length (2) and the code,
// and the time as 8 bytes, big-endian. Every part has a fixed length or
// its length before it, so one input names exactly one (CID,
// jurisdiction, time).
func DeliveryAckInput(record cid.Cid, jurisdiction string, at int64) ([]byte, error) {
	if !IsRecordID(record) {
		return nil, fmt.Errorf("deliver: %s is not a record ID", record)
	}
	if !ValidJurisdiction(jurisdiction) {
		return nil, fmt.Errorf("deliver: %q is not a jurisdiction code", jurisdiction)
	}
	if at < 0 {
		return nil, fmt.Errorf("deliver: negative time %d", at)
	}
	b := make([]byte, 0, len(DeliverAckDomain)+1+36+1+len(jurisdiction)+8)
	b = append(append(b, DeliverAckDomain...), 0)
	b = append(b, record.Bytes()...)
	b = append(append(b, byte(len(jurisdiction))), jurisdiction...)
	return binary.BigEndian.AppendUint64(b, uint64(at)), nil
}

// SignDeliveryAck makes the acknowledgement of record by the node whose
// key is key, for jurisdiction, at the time at (Unix ms).
func SignDeliveryAck(key crypto.PrivKey, record cid.Cid, jurisdiction string, at int64) (DeliveryAck, error) {
	msg, err := DeliveryAckInput(record, jurisdiction, at)
	if err != nil {
		return DeliveryAck{}, err
	}
	priv, err := Ed25519Private(key)
	if err != nil {
		return DeliveryAck{}, fmt.Errorf("deliver: %w", err)
	}
	return DeliveryAck{Record: record, Jurisdiction: jurisdiction, At: at, Sig: ed25519.Sign(priv, msg)}, nil
}

// Verify checks that node, whose peer ID embeds its Ed25519 key, signed a
// (as crypto/ed25519.Verify, the record signature's rule). It does not
// say whether node is a node of a.Jurisdiction: the trust view does.
func (a DeliveryAck) Verify(node peer.ID) error {
	msg, err := DeliveryAckInput(a.Record, a.Jurisdiction, a.At)
	if err != nil {
		return err
	}
	pub, err := PeerEd25519(node)
	if err != nil {
		return fmt.Errorf("deliver: %w", err)
	}
	if len(a.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, a.Sig) {
		return fmt.Errorf("%w: by %s for %s", ErrDeliverAck, node, a.Record)
	}
	return nil
}

// EncodeDeliverRequest is the delivery request for a record: a frame
// holding its bytes, then, for a receipt, a frame for each decision block
// the receiver is to keep with it (at most MaxDecisions, each at most
// MaxDecisionBlock bytes, DeliverMaxBlocks in all).
func EncodeDeliverRequest(record []byte, blocks ...[]byte) ([]byte, error) {
	if len(record) == 0 || len(record) > MaxRecordSize {
		return nil, fmt.Errorf("%w: a record of %d bytes", ErrDeliverRequest, len(record))
	}
	if len(blocks) > MaxDecisions {
		return nil, fmt.Errorf("%w: %d decision blocks", ErrDeliverRequest, len(blocks))
	}
	b, total := AppendFrame(nil, record), 0
	for _, blk := range blocks {
		if total += len(blk); len(blk) == 0 || len(blk) > MaxDecisionBlock || total > DeliverMaxBlocks {
			return nil, fmt.Errorf("%w: decision blocks of %d bytes", ErrDeliverRequest, total)
		}
		b = AppendFrame(b, blk)
	}
	return b, nil
}

// DecodeDeliverRequest parses a delivery request: a frame of 1 to
// MaxRecordSize bytes, then up to MaxDecisions frames of 1 to
// MaxDecisionBlock bytes (DeliverMaxBlocks in all), and nothing after
// them. It returns the frames' bytes; the receiver decodes the record
// (Decode) and the blocks (DecodeDecisionBlock) itself.
func DecodeDeliverRequest(b []byte) (record []byte, blocks [][]byte, err error) {
	c := &byteCursor{b: b}
	if record, err = ReadFrame(c, MaxRecordSize); err != nil {
		return nil, nil, ErrDeliverRequest
	}
	total := 0
	for !c.done() {
		blk, err := ReadFrame(c, MaxDecisionBlock)
		if total += len(blk); err != nil || len(blk) == 0 || len(blocks) == MaxDecisions || total > DeliverMaxBlocks {
			return nil, nil, ErrDeliverRequest
		}
		blocks = append(blocks, blk)
	}
	return record, blocks, nil
}

// EncodeDeliverAnswer is the answer to a delivery request: the
// acknowledgement (status 0x00, the code's length and the code, the time
// as 8 bytes big-endian, the 64-byte signature), or the single byte 0x01
// for nil (refused: not for this node, or not accepted). The record's CID
// is not repeated: the request named it.
func EncodeDeliverAnswer(ack *DeliveryAck) ([]byte, error) {
	if ack == nil {
		return []byte{deliverStatusRefused}, nil
	}
	if !ValidJurisdiction(ack.Jurisdiction) || ack.At < 0 || len(ack.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: malformed acknowledgement", ErrDeliverAnswer)
	}
	b := make([]byte, 0, DeliverAnswerSize)
	b = append(b, deliverStatusAck, byte(len(ack.Jurisdiction)))
	b = append(b, ack.Jurisdiction...)
	b = binary.BigEndian.AppendUint64(b, uint64(ack.At))
	return append(b, ack.Sig...), nil
}

// DecodeDeliverAnswer parses the answer to the delivery of record: the
// acknowledgement (with Record set to record), or nil for a refusal. The
// caller verifies the acknowledgement's signature (DeliveryAck.Verify).
func DecodeDeliverAnswer(record cid.Cid, b []byte) (*DeliveryAck, error) {
	if len(b) == 1 && b[0] == deliverStatusRefused {
		return nil, nil
	}
	if len(b) != DeliverAnswerSize || b[0] != deliverStatusAck || b[1] != 2 {
		return nil, ErrDeliverAnswer
	}
	code := string(b[2:4])
	at := binary.BigEndian.Uint64(b[4:12])
	if !ValidJurisdiction(code) || at > 1<<63-1 {
		return nil, ErrDeliverAnswer
	}
	return &DeliveryAck{Record: record, Jurisdiction: code, At: int64(at), Sig: append([]byte(nil), b[12:]...)}, nil
}
