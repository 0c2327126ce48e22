package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// docExampleRecord is the worked example of doc.go: the DE authority (seed
// 32×0x01) accredits a platform (seed 32×0x04) as a controller for 2026.
func docExampleRecord(t testing.TB) *Record {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	body := &Accreditation{
		Subject:      seedID(seedControllerDE).String(),
		Jurisdiction: "DE",
		Roles:        []Role{RoleController},
		Name:         "Example Platform GmbH",
		ValidFrom:    start,
		ValidUntil:   end,
	}
	return mustSign(t, seedKey(seedAuthorityDE), start, body)
}

// docExample renders the worked example exactly as doc.go must hold it:
// comment lines in gofmt's doc-comment form.
func docExample(t testing.TB) string {
	r := docExampleRecord(t)
	var lines []string
	text := func(s string) { lines = append(lines, strings.TrimRight("// "+s, " ")) }
	code := func(s string) { lines = append(lines, "//\t"+s) }
	blank := func() { lines = append(lines, "//") }

	text("The issuer is the DE authority, the Ed25519 key whose seed is 32 bytes of 0x01;")
	text("the subject is the key whose seed is 32 bytes of 0x04:")
	blank()
	code("issuer   " + r.Issuer().String())
	code("subject  " + seedID(seedControllerDE).String())
	blank()
	body, _ := r.Accreditation()
	text(fmt.Sprintf("Both issued_at and valid_from are %d (2026-01-01T00:00:00Z);", r.IssuedAt()))
	text(fmt.Sprintf("valid_until is %d (2027-01-01T00:00:00Z).", body.ValidUntil))
	blank()
	unsigned := r.SigningInput()[len(SignatureDomain)+1:]
	text(fmt.Sprintf("The signing input is %d bytes: the domain string, a zero byte, and the", len(r.SigningInput())))
	text(fmt.Sprintf("%d-byte encoding of the record map without sig:", len(unsigned)))
	blank()
	code(fmt.Sprintf("%-66s # %q", hex.EncodeToString([]byte(SignatureDomain)), SignatureDomain))
	code(fmt.Sprintf("%-66s # zero byte", "00"))
	for _, l := range hexLines(unsigned, 32) {
		code(l)
	}
	blank()
	text(fmt.Sprintf("The record is %d bytes:", len(r.Bytes())))
	blank()
	for _, l := range hexLines(r.Bytes(), 32) {
		code(l)
	}
	blank()
	text("The same bytes, annotated:")
	blank()
	for _, l := range annotate(r.Bytes()) {
		code(l)
	}
	blank()
	text("Its CID, the record ID:")
	blank()
	code(r.CID().String())
	blank()
	js, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, js, "", "  "); err != nil {
		t.Fatal(err)
	}
	text("Its DAG-JSON view (indented here; the view itself has no white space):")
	blank()
	for _, l := range strings.Split(pretty.String(), "\n") {
		code(l)
	}
	return strings.Join(lines, "\n") + "\n"
}

func hexLines(b []byte, width int) []string {
	var out []string
	for len(b) > width {
		out = append(out, hex.EncodeToString(b[:width]))
		b = b[width:]
	}
	return append(out, hex.EncodeToString(b))
}

// annotate renders canonical CBOR as hex with a diagnostic comment per
// item, one level of indentation per nesting level.
func annotate(b []byte) []string {
	var out []string
	var item func(b []byte, depth int) []byte
	line := func(depth int, hexpart, comment string) {
		s := strings.Repeat("  ", depth) + hexpart
		if comment != "" {
			s = fmt.Sprintf("%-44s # %s", s, comment)
		}
		out = append(out, s)
	}
	item = func(b []byte, depth int) []byte {
		major, ai := b[0]>>5, b[0]&0x1f
		hl := 1
		switch ai {
		case 24:
			hl = 2
		case 25:
			hl = 3
		case 26:
			hl = 5
		case 27:
			hl = 9
		}
		head := hex.EncodeToString(b[:hl])
		v, rest := treeDecodeOne(b)
		switch major {
		case 0, 1:
			line(depth, head, fmt.Sprint(v))
		case 2, 3:
			content := b[hl : len(b)-len(rest)]
			comment := fmt.Sprintf("bytes(%d)", len(content))
			if major == 3 {
				comment = fmt.Sprintf("%q", content)
			}
			if len(content) <= 16 {
				line(depth, head+" "+hex.EncodeToString(content), comment)
				break
			}
			if major == 3 {
				comment = fmt.Sprintf("text(%d) %s", len(content), comment)
			}
			line(depth, head, comment)
			for _, l := range hexLines(content, 32) {
				line(depth+1, l, "")
			}
		case 4:
			line(depth, head, fmt.Sprintf("array(%d)", len(v.([]any))))
			r := b[hl:]
			for range v.([]any) {
				r = item(r, depth+1)
			}
		case 5:
			line(depth, head, fmt.Sprintf("map(%d)", len(v.(cborMap))))
			r := b[hl:]
			for range v.(cborMap) {
				r = item(r, depth+1)
				r = item(r, depth+1)
			}
		case 6:
			line(depth, head, fmt.Sprintf("tag(%d)", v.(cborTag).N))
			item(b[hl:], depth+1)
		default:
			line(depth, head, fmt.Sprint(v))
		}
		return rest
	}
	item(b, 0)
	return out
}

// TestDocExample recomputes the worked example and fails if doc.go does
// not hold it word for word.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	want := docExample(t)
	if !strings.Contains(string(doc), want) {
		t.Errorf("doc.go does not contain the worked example as the code computes it; it should read:\n\n%s", want)
	}
	// The parts a reader checks, once more on their own, so a failure
	// says which number drifted.
	r := docExampleRecord(t)
	unsigned := r.SigningInput()[len(SignatureDomain)+1:]
	checks := append(hexLines(unsigned, 32), hexLines(r.Bytes(), 32)...)
	for _, s := range append(checks, r.CID().String(), r.Issuer().String()) {
		if !strings.Contains(string(doc), s) {
			t.Errorf("doc.go lacks %s", s)
		}
	}
	if _, err := Parse(r.Bytes()); err != nil {
		t.Errorf("the worked example does not parse: %v", err)
	}
}
