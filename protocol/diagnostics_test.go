package protocol

import (
	"bytes"
	"testing"
)

// TestDiagnosticsNameTheField: the slow-path diagnostics say which field
// is unknown, missing, or an empty optional.
func TestDiagnosticsNameTheField(t *testing.T) {
	for _, c := range []struct {
		name, json string
		code       Code
		field      string
	}{
		{"unknown", `{"target": {"/": "bafyreih4pceicwa2wekum2bgtfr4s7yujacu3voxqo6zrnpdvyycrdqtiy"}, "reason": "r", "effective_at": 1, "colour": "red"}`, CodeMalformed, "body.colour"},
		{"missing", `{"target": {"/": "bafyreih4pceicwa2wekum2bgtfr4s7yujacu3voxqo6zrnpdvyycrdqtiy"}, "reason": "r"}`, CodeMalformed, "body.effective_at"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := BodyFromJSON(KindRevocation, []byte(c.json))
			e, ok := err.(*Error)
			if !ok || e.Code != c.code || e.Field != c.field {
				t.Fatalf("got %v; want %s at %s", err, c.code, c.field)
			}
		})
	}
	acc := `{"subject": "12D3KooWJR7MaoMooUGGrMqJjLsJqBGU3AKViPiVUwy14p5VSx8k", "jurisdiction": "DE", "roles": ["node"], "name": "n", "valid_from": 1, "valid_until": 2, "addrs": []}`
	_, err := BodyFromJSON(KindAccreditation, []byte(acc))
	if e, ok := err.(*Error); !ok || e.Code != CodeNonCanonical || e.Field != "body.addrs" {
		t.Fatalf("empty optional list: got %v; want non_canonical at body.addrs", err)
	}
}

// TestSignDecodes: what Sign makes is exactly what Decode makes of its
// bytes, and later changes to the caller's body do not reach the record.
func TestSignDecodes(t *testing.T) {
	for kind, body := range map[Kind]Body{
		KindAccreditation: baseAccreditation(), KindConsent: baseConsent(), KindRuleset: baseRuleset(),
		KindIncident: baseIncident(), KindRevocation: baseRevocation(), KindReceipt: baseReceipt(),
	} {
		r, err := Sign(seedKey(seedAuthorityDE), t0, body)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		d, err := Parse(r.Bytes())
		if err != nil {
			t.Fatalf("%s: Sign made bytes Parse refuses: %v", kind, err)
		}
		a, _ := CBORToJSON(mustEncode(t, r.Body()))
		b, _ := CBORToJSON(mustEncode(t, d.Body()))
		if d.CID() != r.CID() || d.Issuer() != r.Issuer() || d.IssuedAt() != r.IssuedAt() || string(a) != string(b) {
			t.Fatalf("%s: Sign's record differs from Decode's", kind)
		}
		owned, err := SignOwned(seedKey(seedAuthorityDE), t0, body)
		if err != nil {
			t.Fatalf("%s: SignOwned: %v", kind, err)
		}
		if !bytes.Equal(owned.Bytes(), r.Bytes()) || owned.Body() != body {
			t.Fatalf("%s: SignOwned made other bytes than Sign, or copied the body", kind)
		}
		c, _ := CBORToJSON(mustEncode(t, owned.Body()))
		if string(c) != string(b) {
			t.Fatalf("%s: SignOwned's body encodes otherwise than Decode's", kind)
		}
	}
	body := baseConsent()
	r, err := Sign(seedKey(seedAuthorityDE), t0, body)
	if err != nil {
		t.Fatal(err)
	}
	body.Purposes[0] = "changed"
	if c, _ := r.Consent(); c.Purposes[0] == "changed" {
		t.Fatal("the record shares the caller's body")
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
