package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// recordsDoc is docs/records.md: the sections of the protocol's
// specification (protocol/doc.go) a user of the CLI and the API reads —
// how values and bodies are shaped, who may issue what, freshness, the
// transfer decision's checks and the error codes — taken from the spec's
// text so that the two cannot drift.
const recordsDoc = "../../docs/records.md"

// recordsDocSections are the spec's sections docs/records.md carries.
var recordsDocSections = []string{"Value rules", "Bodies", "Authorisation", "Freshness", "Transfer decision", "Errors"}

// TestRecordsDoc: docs/records.md is what the spec's sections make.
// Regenerate it with ENTENTE_UPDATE_DOCS=1 go test ./cmd/entente -run TestRecordsDoc.
func TestRecordsDoc(t *testing.T) {
	want := makeRecordsDoc(t)
	if os.Getenv("ENTENTE_UPDATE_DOCS") != "" {
		if err := os.WriteFile(recordsDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(recordsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/records.md is not what protocol/doc.go's sections make: regenerate it with ENTENTE_UPDATE_DOCS=1 go test ./cmd/entente -run TestRecordsDoc")
	}
}

// makeRecordsDoc turns the spec's sections into Markdown: "# X" headings
// one level down, the comment markers gone (godoc's tab-indented blocks
// are Markdown's code blocks, its "  - " items its lists), and the
// references to the design contract, which is not in the repository,
// left out.
func makeRecordsDoc(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../../protocol/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "//"); ok {
			text = append(text, strings.TrimPrefix(rest, " "))
		}
	}
	sections := map[string][]string{}
	var cur string
	for _, line := range text {
		if h, ok := strings.CutPrefix(line, "# "); ok {
			cur = h
			continue
		}
		sections[cur] = append(sections[cur], line)
	}
	design := regexp.MustCompile(` \(DESIGN\.md §[0-9–§]+\)`)
	var b strings.Builder
	b.WriteString("# Records, their rules, and the transfer decision\n\n" +
		"<!-- Made from protocol/doc.go, the normative specification, by TestRecordsDoc\n" +
		"(cmd/entente/records_doc_test.go); edit the spec and regenerate:\n" +
		"ENTENTE_UPDATE_DOCS=1 go test ./cmd/entente -run TestRecordsDoc -->\n\n" +
		"What a record's body holds, who may issue it, when a node takes it, how a transfer is\n" +
		"decided and how a refusal is named: the sections of the protocol's specification (the\n" +
		"package doc of `protocol`, which also defines the encoding, signatures, the wire\n" +
		"protocols, checkpoints and bundles) that the CLI and the API show their users.\n" +
		"`entente record sign` takes a body as DAG-JSON or TOML (`entente record sign --help`:\n" +
		"dates, links and bytes in TOML); `ms` fields are Unix milliseconds.\n")
	for _, name := range recordsDocSections {
		lines, ok := sections[name]
		if !ok {
			t.Fatalf("protocol/doc.go has no section %q", name)
		}
		b.WriteString("\n## " + name + "\n")
		b.WriteString(design.ReplaceAllString(strings.TrimRight(strings.Join(lines, "\n"), "\n"), "") + "\n")
	}
	return b.String()
}
