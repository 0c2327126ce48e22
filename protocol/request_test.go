package protocol

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

// requestJSON is a valid request's JSON form with replacements applied
// (old, new pairs).
func requestJSON(repl ...string) string {
	req := baseRequest()
	s := `{"consent": "` + req.Consent.String() + `", "from": "DE", "to": "FR", "sender": "` + req.Sender + `", "recipient": "` + req.Recipient + `",
 "purpose": "research", "categories": ["face"], "tier": 1, "retention_days": 90, "at": "2026-11-24T10:00:00Z"}`
	return strings.NewReplacer(repl...).Replace(s)
}

func TestParseTransferRequestJSON(t *testing.T) {
	base := baseRequest()
	base.RetentionDays = 90
	base.At = t0
	for _, tc := range []struct {
		name  string
		in    string
		code  Code
		field string
		want  func(*TransferRequest) // applied to base; nil: base
	}{
		{"valid", requestJSON(), "", "", nil},
		{"no at", requestJSON(`, "at": "2026-11-24T10:00:00Z"`, ""), "", "", func(r *TransferRequest) { r.At = 0 }},
		{"at with an offset and nanoseconds", requestJSON("10:00:00Z", "11:00:00.123456789+01:00"), "", "", func(r *TransferRequest) { r.At = t0 + 123 }},
		{"categories sorted", requestJSON(`["face"]`, `["iris", "face"]`), "", "", func(r *TransferRequest) { r.Categories = []string{"face", "iris"} }},
		{"tier 0", requestJSON(`"tier": 1`, `"tier": 0`), "", "", func(r *TransferRequest) { r.Tier = 0 }},
		{"fields in any order", `{"tier": 1, "at": "2026-11-24T10:00:00Z", "retention_days": 90, "categories": ["face"], "purpose": "research", "recipient": "` +
			base.Recipient + `", "to": "FR", "from": "DE", "sender": "` + base.Sender + `", "consent": "` + base.Consent.String() + `"}`, "", "", nil},
		{"with a parent", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"item": 3, "receipt": "`+base.Consent.String()+`"}`), "", "", func(r *TransferRequest) {
			r.Tier, r.Parent = 2, &DecisionRef{Receipt: base.Consent, Item: 3}
		}},

		{"not an object", `["consent"]`, CodeMalformed, "", nil},
		{"not JSON", `{"consent": `, CodeMalformed, "consent", nil},
		{"empty", ``, CodeMalformed, "", nil},
		{"trailing data", requestJSON() + ` {}`, CodeMalformed, "", nil},
		{"trailing garbage", requestJSON() + `x`, CodeMalformed, "", nil},
		{"unknown field", requestJSON(`"tier"`, `"colour": "red", "tier"`), CodeMalformed, "colour", nil},
		{"field in another case", requestJSON(`"tier"`, `"Tier"`), CodeMalformed, "Tier", nil},
		{"duplicate field", requestJSON(`"tier": 1`, `"tier": 1, "tier": 2`), CodeMalformed, "tier", nil},
		{"missing field", requestJSON(`"purpose": "research",`, ""), CodeMalformed, "purpose", nil},
		{"missing tier", requestJSON(`"tier": 1,`, ""), CodeMalformed, "tier", nil},
		{"missing sender", requestJSON(`"sender": "`+base.Sender+`",`, ""), CodeMalformed, "sender", nil},
		{"parent not an object", requestJSON(`"tier": 1`, `"tier": 2, "parent": "`+base.Consent.String()+`"`), CodeMalformed, "parent", nil},
		{"parent null", requestJSON(`"tier": 1`, `"tier": 2, "parent": null`), CodeMalformed, "parent", nil},
		{"parent without item", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+base.Consent.String()+`"}`), CodeMalformed, "parent", nil},
		{"parent with another field", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+base.Consent.String()+`", "item": 0, "tier": 1}`), CodeMalformed, "parent", nil},
		{"parent field twice", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+base.Consent.String()+`", "item": 0, "item": 1}`), CodeMalformed, "parent", nil},
		{"parent receipt not canonical", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+offByUnusedBits(base.Consent.String())+`", "item": 0}`), CodeBadCID, "parent.receipt", nil},
		{"parent item negative", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+base.Consent.String()+`", "item": -1}`), CodeInvalidBody, "parent.item", nil},
		{"parent item beyond a receipt", requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "`+base.Consent.String()+`", "item": 1000}`), CodeInvalidBody, "parent.item", nil},
		{"bad sender", requestJSON(base.Sender, "12D3KooWnotapeer"), CodeInvalidBody, "sender", nil},
		{"null", requestJSON(`"tier": 1`, `"tier": null`), CodeMalformed, "tier", nil},
		{"tier as a string", requestJSON(`"tier": 1`, `"tier": "1"`), CodeMalformed, "tier", nil},
		{"tier as a fraction", requestJSON(`"tier": 1`, `"tier": 1.5`), CodeMalformed, "tier", nil},
		{"tier too large", requestJSON(`"tier": 1`, `"tier": 99999999999999999999`), CodeMalformed, "tier", nil},
		{"categories as a string", requestJSON(`["face"]`, `"face"`), CodeMalformed, "categories", nil},
		{"consent as a link", requestJSON(`"consent": "`+base.Consent.String()+`"`, `"consent": {"/": "`+base.Consent.String()+`"}`), CodeMalformed, "consent", nil},
		{"at as a number", requestJSON(`"2026-11-24T10:00:00Z"`, `1795428000000`), CodeMalformed, "at", nil},

		{"bad CID", requestJSON(base.Consent.String(), "bafynotacid"), CodeBadCID, "consent", nil},
		{"CIDv0", requestJSON(base.Consent.String(), "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), CodeBadCID, "consent", nil},
		{"CID with a stray last character", requestJSON(base.Consent.String(), offByUnusedBits(base.Consent.String())), CodeBadCID, "consent", nil},
		{"bad from", requestJSON(`"from": "DE"`, `"from": "de"`), CodeInvalidBody, "from", nil},
		{"bad to", requestJSON(`"to": "FR"`, `"to": "FRA"`), CodeInvalidBody, "to", nil},
		{"wildcard to", requestJSON(`"to": "FR"`, `"to": "*"`), CodeInvalidBody, "to", nil},
		{"bad recipient", requestJSON(base.Recipient, "12D3KooWnotapeer"), CodeInvalidBody, "recipient", nil},
		{"bad purpose", requestJSON(`"research"`, `"Research!"`), CodeInvalidBody, "purpose", nil},
		{"no categories", requestJSON(`["face"]`, `[]`), CodeInvalidBody, "categories", nil},
		{"unknown category", requestJSON(`["face"]`, `["face", "dna"]`), CodeInvalidBody, "categories[0]", nil},
		{"duplicate category", requestJSON(`["face"]`, `["face", "face"]`), CodeInvalidBody, "categories[1]", nil},
		{"negative tier", requestJSON(`"tier": 1`, `"tier": -1`), CodeInvalidBody, "tier", nil},
		{"negative retention", requestJSON(`"retention_days": 90`, `"retention_days": -90`), CodeInvalidBody, "retention_days", nil},
		{"at not RFC 3339", requestJSON(`"2026-11-24T10:00:00Z"`, `"24/11/2026"`), CodeInvalidBody, "at", nil},
		{"at before 1970", requestJSON(`"2026-11-24T10:00:00Z"`, `"1969-12-31T23:59:59Z"`), CodeInvalidBody, "at", nil},
		{"too large", requestJSON(`"research"`, `"`+strings.Repeat("a", MaxTransferRequestJSON)+`"`), CodeTooLarge, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTransferRequestJSON([]byte(tc.in))
			checkErr(t, "ParseTransferRequestJSON", err, tc.code, tc.field)
			if tc.code != "" {
				return
			}
			want := base
			want.Categories = []string{"face"}
			if tc.want != nil {
				tc.want(&want)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestTransferRequestJSONRoundTrip(t *testing.T) {
	req := baseRequest()
	b, err := req.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"consent":"` + req.Consent.String() + `","from":"DE","to":"FR","sender":"` + req.Sender + `","recipient":"` + req.Recipient +
		`","purpose":"research","categories":["face"],"tier":1,"retention_days":30,"at":"` + time.UnixMilli(req.At).UTC().Format(time.RFC3339) + `"}`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	got, err := ParseTransferRequestJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, req) {
		t.Errorf("round trip: %+v, want %+v", *got, req)
	}
	req.At = 0
	if b, _ := req.JSON(); bytes.Contains(b, []byte(`"at"`)) || bytes.Contains(b, []byte(`"parent"`)) {
		t.Errorf("at 0 or no parent is written: %s", b)
	}
	req.At, req.Tier, req.Parent = t0, 2, &DecisionRef{Receipt: req.Consent, Item: 7}
	b, _ = req.JSON()
	if !bytes.HasSuffix(b, []byte(`,"parent":{"receipt":"`+req.Consent.String()+`","item":7}}`)) {
		t.Errorf("parent: %s", b)
	}
	if got, err := ParseTransferRequestJSON(b); err != nil || !reflect.DeepEqual(*got, req) {
		t.Errorf("round trip with a parent: %+v %v, want %+v", got, err, req)
	}
}

// FuzzParseTransferRequestJSON: the parser never panics and refuses with
// an *Error; what it accepts is valid, and survives JSON and back
// unchanged; its fast path and its token stream accept the same requests
// and read the same fields from them.
func FuzzParseTransferRequestJSON(f *testing.F) {
	f.Add([]byte(requestJSON()))
	f.Add([]byte(requestJSON(`, "at": "2026-11-24T10:00:00Z"`, "")))
	f.Add([]byte(requestJSON(`["face"]`, `["iris", "face"]`)))
	f.Add([]byte(requestJSON(`"tier": 1`, `"tier": 1, "tier": 2`)))
	f.Add([]byte(requestJSON(`"tier": 1`, `"tier": -1`)))
	f.Add([]byte(requestJSON("10:00:00Z", "11:00:00.5+01:00")))
	f.Add([]byte(requestJSON(`"tier": 1`, `"tier": 2, "parent": {"receipt": "bafyreia3ghrigh6dovivuil25wbuaygzm3sm7o7xxikdw5bgwyqtcdfkau", "item": 0}`)))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"consent": null}`))
	f.Add([]byte(`[1, 2]`))
	f.Add([]byte(requestJSON(`"tier": 1`, `"tier": 1, "extra": {"a": [1, "}:"]}`)))
	f.Add([]byte(requestJSON(`"tier": 1`, `"tier": 1, "\"tier\\": 2`)))
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, fastOK := parseTransferRequestFast(b)
		stream, streamErr := parseTransferRequestStream(b)
		if fastOK != (streamErr == nil) {
			t.Fatalf("the fast path accepts: %v; the token stream: %v", fastOK, streamErr)
		}
		if fastOK && !reflect.DeepEqual(fast, stream) {
			t.Fatalf("the fast path read\n%+v\nthe token stream\n%+v", fast, stream)
		}
		req, err := ParseTransferRequestJSON(b)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		if err := req.Validate(""); err != nil {
			t.Fatalf("accepted an invalid request: %v", err)
		}
		out, err := req.JSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTransferRequestJSON(out)
		if err != nil {
			t.Fatalf("its own JSON %s does not parse: %v", out, err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req, again)
		}
		out2, _ := again.JSON()
		if !bytes.Equal(out, out2) {
			t.Fatalf("JSON not stable:\n%s\n%s", out, out2)
		}
	})
}
