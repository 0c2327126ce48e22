package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/store"
)

// TestBackupRestore: entente backup of a running node (named by a home
// that holds its API address and operator token, or by --api and a token
// file) writes a checked file, 0600; entente restore writes it into a
// home without a data directory and says what it restored; each refuses
// what it must, changing nothing.
func TestBackupRestore(t *testing.T) {
	closeDefaultIdle(t)
	w := newTransferWorld(t)
	de := w.Net.NodeOf("DE")
	dir := t.TempDir()
	c := newCLI(t)

	// A home for the running DE node: its config, its operator token and
	// the address it listens on (as entente run writes it).
	fed, _ := writeFederation(t, dir)
	home := filepath.Join(dir, "de-home")
	c.ok("init", "--home", home, "--federation", fed, "--jurisdiction", "DE")
	if err := config.WriteFileAtomic(filepath.Join(home, config.DefaultTokenFile), []byte(de.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, home, config.APIAddressFile, de.APIAddr()+"\n", 0o600)

	out := filepath.Join(dir, "de.backup")
	stdout := c.ok("backup", "--home", home, "--out", out)
	records := de.Store().Len()
	for _, want := range []string{"backup of " + strconv.FormatUint(records, 10) + " records", "written to " + out} {
		if !strings.Contains(stdout, want) {
			t.Errorf("backup printed %q; want %q in it", stdout, want)
		}
	}
	wantMode(t, out, 0o600)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.CheckBackup(f)
	f.Close()
	if err != nil || info.Tree.Size != records {
		t.Fatalf("the backup file: %+v, %v; want %d records", info, err, records)
	}
	// Again, over the first, by --api and a token file: replaced whole.
	tokenFile := writeFile(t, dir, "de.token", de.Token+"\n", 0o600)
	c.ok("backup", "--api", de.APIAddr(), "--token-file", tokenFile, "--out", out)
	wantMode(t, out, 0o600)

	// A caller that is not the operator gets nothing; the file stays.
	before, _ := os.ReadFile(out)
	wrong := writeFile(t, dir, "wrong.token", strings.Repeat("0", 64)+"\n", 0o600)
	wantError(t, c.fails(1, "backup", "--api", de.APIAddr(), "--token-file", wrong, "--out", out), false, "401 unauthorized")
	if after, _ := os.ReadFile(out); string(after) != string(before) {
		t.Error("a refused backup changed the file")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".de.backup.tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left behind: %v", tmp)
	}

	// restore into a new home of the same key: what it restored.
	key := filepath.Join(dir, "de.key")
	if err := config.WriteKey(key, de.Key); err != nil {
		t.Fatal(err)
	}
	newHome := filepath.Join(dir, "new-home")
	c.ok("init", "--home", newHome, "--federation", fed, "--jurisdiction", "DE", "--key", key)
	stdout = c.ok("restore", "--home", newHome, "--in", out)
	if want := "restored " + strconv.FormatUint(records, 10) + " records (log size " + strconv.FormatUint(records, 10); !strings.Contains(stdout, want) {
		t.Errorf("restore printed %q; want %q", stdout, want)
	}
	// The home has no access file: restore says the callers' tokens are not
	// in the backup, and where they are.
	if want := "copy access.toml from the old home into " + newHome; !strings.Contains(stdout, want) {
		t.Errorf("restore printed %q; want %q", stdout, want)
	}
	st, err := store.Open(store.Options{Dir: filepath.Join(newHome, "data")})
	if err != nil {
		t.Fatal(err)
	}
	th, _ := st.TreeHead()
	_, restored, _ := st.Restored()
	st.Close()
	if th != info.Tree || !restored {
		t.Fatalf("the restored store: log %+v (want %+v), restore mark %v", th, info.Tree, restored)
	}
	// Never over a data directory.
	wantError(t, c.fails(1, "restore", "--home", newHome, "--in", out), true, "already has a data directory", "move "+filepath.Join(newHome, "data")+" aside")

	// A damaged backup restores nothing.
	data, _ := os.ReadFile(out)
	data[len(data)/2] ^= 0xff
	damaged := writeFile(t, dir, "damaged.backup", string(data), 0o600)
	third := filepath.Join(dir, "third-home")
	c.ok("init", "--home", third, "--federation", fed, "--jurisdiction", "DE")
	wantError(t, c.fails(1, "restore", "--home", third, "--in", damaged), true, "not a valid backup", "take a new backup")
	// With the access file copied over, nothing is said of it.
	writeFile(t, third, config.AccessFile, "", 0o600)
	if out := c.ok("restore", "--home", third, "--in", out); strings.Contains(out, "access.toml") {
		t.Errorf("restore into a home with an access file printed %q", out)
	}
	if err := os.RemoveAll(filepath.Join(third, "data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(third, "data")); !os.IsNotExist(err) {
		t.Errorf("a refused restore left a data directory: %v", err)
	}
	wantError(t, c.fails(1, "restore", "--home", third, "--in", filepath.Join(dir, "missing.backup")), false, "missing.backup")

	// Usage.
	for _, args := range [][]string{
		{"backup", "--home", home},
		{"backup", "--out", out},
		{"backup", "--home", home, "--out", out, "extra"},
		{"restore", "--home", third},
		{"restore", "--in", out},
	} {
		wantError(t, c.fails(2, args...), true, "")
	}
}
