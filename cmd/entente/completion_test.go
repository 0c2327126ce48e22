package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompletionScripts: each shell's script names every registered
// command and each of its flags, and parses in its shell where that shell
// is installed.
func TestCompletionScripts(t *testing.T) {
	c := newCLI(t)
	var names []string
	for _, f := range flagsOf(findCommand("record sign")) {
		names = append(names, f.Name)
	}
	if want := []string{"body", "issued-at", "key", "kind", "out"}; !slices.Equal(names, want) {
		t.Fatalf("the flags of record sign are read as %v, want %v", names, want)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			script := c.ok("completion", shell)
			for _, cmd := range commands {
				for _, word := range strings.Fields(cmd.name) {
					if !strings.Contains(script, word) {
						t.Errorf("the %s script does not mention %q (of %q)", shell, word, cmd.name)
					}
				}
				for _, f := range flagsOf(cmd) {
					if !strings.Contains(script, f.Name) {
						t.Errorf("the %s script does not mention the flag %s of %q", shell, f.Name, cmd.name)
					}
				}
			}
			bin, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed: the script is not parsed", shell)
			}
			file := filepath.Join(t.TempDir(), "entente."+shell)
			if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-n", file).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
	wantUsageError(t, c.fails(2, "completion"), "bash, zsh or fish", "entente completion --help")
	wantUsageError(t, c.fails(2, "completion", "tcsh"), "bash, zsh or fish", "entente completion --help")
}

// TestBashCompletes runs the bash script's completion function as bash
// would on a few command lines.
func TestBashCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	script := filepath.Join(t.TempDir(), "entente.bash")
	if err := os.WriteFile(script, []byte(newCLI(t).ok("completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string // the words typed, the last one being completed
		want string // COMPREPLY, one a line
	}{
		{"entente rec", "receipt\nrecord"},
		{"entente record s", "show\nsign\nsubmit"},
		{"entente record list --l", "--limit"},
		{"entente record list --kind consent --j", "--json\n--jurisdiction"},
		{"entente key show --", "--help\n--json\n--key"},
		{"entente completion ", "bash\nfish\nzsh"},
		{"entente help incident f", "follow"},
		{"entente verify --retention", "--retention-days"},
	} {
		words := strings.Split(tc.line, " ")
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_entente\nprintf '%s\\n' \"${COMPREPLY[@]}\" | sort\n"
		out, err := exec.Command(bash, "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Errorf("%q: %v\n%s", tc.line, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("completing %q: got\n%s\nwant\n%s", tc.line, got, tc.want)
		}
	}
}
