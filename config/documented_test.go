package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEverySettingDocumented: every key of the node config file appears
// in the package doc's example and in docs/operating.md, so that no
// setting is parsed but undocumented.
func TestEverySettingDocumented(t *testing.T) {
	n := Defaults()
	n.Federation, n.Jurisdiction = "f.toml", "DE"
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pkgDoc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`(?m)^\s*([a-z_]+)\s*=`)
	keys := key.FindAllStringSubmatch(string(b), -1)
	if len(keys) < 20 {
		t.Fatalf("found only %d keys in the marshalled defaults", len(keys))
	}
	for _, k := range keys {
		name := k[1]
		if !regexp.MustCompile(`(?m)^//\s+` + name + ` = `).Match(pkgDoc) {
			t.Errorf("setting %s is not in the package doc's example config", name)
		}
		if !strings.Contains(string(guide), "`"+name) && !strings.Contains(string(guide), "."+name+"`") {
			t.Errorf("setting %s is not in docs/operating.md", name)
		}
	}
}
