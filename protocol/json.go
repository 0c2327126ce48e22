package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ipld/go-ipld-prime/codec"
	"github.com/ipld/go-ipld-prime/codec/dagcbor"
	"github.com/ipld/go-ipld-prime/codec/dagjson"
	"github.com/ipld/go-ipld-prime/node/basicnode"
)

// JSON is the record's DAG-JSON view (links as {"/": "bafy..."}, bytes as
// {"/": {"bytes": "..."}}): lossless, so FromJSON gives back the record.
func (r *Record) JSON() ([]byte, error) { return CBORToJSON(r.raw) }

// BodyJSON is the DAG-JSON view of the record's body alone.
func (r *Record) BodyJSON() ([]byte, error) { return CBORToJSON(r.rawBody) }

// CBORToJSON converts DAG-CBOR bytes to DAG-JSON.
func CBORToJSON(b []byte) ([]byte, error) {
	nb := basicnode.Prototype.Any.NewBuilder()
	if err := dagcbor.Decode(nb, bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("dag-cbor: %w", err)
	}
	var out bytes.Buffer
	enc := dagjson.EncodeOptions{EncodeLinks: true, EncodeBytes: true, MapSortMode: codec.MapSortMode_RFC7049}
	if err := enc.Encode(nb.Build(), &out); err != nil {
		return nil, fmt.Errorf("dag-json: %w", err)
	}
	return out.Bytes(), nil
}

// JSONToCBOR converts DAG-JSON to canonical DAG-CBOR. The result is not
// checked against any schema. Every link must be written in the canonical
// text form of a record ID (ParseCID); an *Error with CodeBadCID says
// which is not.
func JSONToCBOR(j []byte) ([]byte, error) {
	if err := checkLinkTexts(j); err != nil {
		return nil, err
	}
	nb := basicnode.Prototype.Any.NewBuilder()
	dec := dagjson.DecodeOptions{ParseLinks: true, ParseBytes: true}
	if err := dec.Decode(nb, bytes.NewReader(j)); err != nil {
		return nil, fmt.Errorf("dag-json: %w", err)
	}
	var out bytes.Buffer
	if err := (dagcbor.EncodeOptions{AllowLinks: true, MapSortMode: codec.MapSortMode_RFC7049}).Encode(nb.Build(), &out); err != nil {
		return nil, fmt.Errorf("dag-cbor: %w", err)
	}
	return out.Bytes(), nil
}

// checkLinkTexts refuses a DAG-JSON link ({"/": "..."}) whose text is
// not the canonical form of a record ID: the DAG-JSON decoder, like most
// base32 decoders, reads a CID with a stray last character as the CID it
// resembles. JSON that does not parse is left to the decoder to refuse.
func checkLinkTexts(j []byte) error {
	var v any
	if json.Unmarshal(j, &v) != nil {
		return nil
	}
	var walk func(path string, v any) error
	walk = func(path string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["/"].(string); ok && len(x) == 1 {
				if _, err := ParseCID(s); err != nil {
					return withField(err, path)
				}
				return nil
			}
			for k, e := range x {
				if err := walk(joinPath(path, k), e); err != nil {
					return err
				}
			}
		case []any:
			for i, e := range x {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("", v)
}

// RecordFromJSON parses a whole record from its DAG-JSON view (with the
// same checks as Parse).
func RecordFromJSON(j []byte) (*Record, error) {
	b, err := JSONToCBOR(j)
	if CodeOf(err) == CodeBadCID {
		return nil, err
	}
	if err != nil {
		return nil, errf(CodeMalformed, "", "%v", err)
	}
	return Parse(b)
}

// BodyFromJSON parses a body of kind k from DAG-JSON and validates it
// against its schema. It is how tools build bodies from files.
func BodyFromJSON(k Kind, j []byte) (Body, error) {
	b, err := JSONToCBOR(j)
	if CodeOf(err) == CodeBadCID {
		return nil, withField(err, "body")
	}
	if err != nil {
		return nil, errf(CodeMalformed, "body", "%v", err)
	}
	return DecodeBody(k, b)
}

// DecodeBody decodes the DAG-CBOR encoding of a body of kind k, strictly,
// and validates it.
func DecodeBody(k Kind, b []byte) (Body, error) {
	body := newBody(k)
	if body == nil {
		return nil, errf(CodeUnknownKind, "kind", "%q is not a record kind of format version %d", k, FormatVersion)
	}
	if err := decodeStrict(b, body, "body"); err != nil {
		return nil, err
	}
	if err := body.validate(); err != nil {
		return nil, err
	}
	return body, nil
}
