package entente_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/entente-net/entente"

// layer orders the packages of DESIGN.md §2: a package may import only
// packages of a lower layer. config is a leaf anyone above protocol may
// use; protocol and store may not.
var layer = map[string]int{
	"protocol": 1,
	"config":   1,
	"store":    2,
	"node":     3,
	"testnet":  4,
	"cmd":      5,
}

// allowed lists imports that cross within a layer on purpose.
func allowed(from, to string) bool {
	if from == to {
		return true
	}
	lf, lt := layer[from], layer[to]
	if from == "protocol" || from == "config" {
		return false // the two leaves import nothing of ours
	}
	if from == "store" && to == "config" {
		return false // the store knows records, not node configuration
	}
	return lt < lf
}

// TestImportsFlowOneWay fails if a package imports one above it
// (protocol <- store <- node <- testnet <- cmd; config a leaf). Test files
// count too, except external _test packages, which may use testnet.
func TestImportsFlowOneWay(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		from := strings.Split(filepath.ToSlash(path), "/")[0]
		if _, ok := layer[from]; !ok {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name.Name, "_test") {
			return nil
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, module+"/") {
				continue
			}
			to := strings.Split(strings.TrimPrefix(p, module+"/"), "/")[0]
			if _, ok := layer[to]; !ok {
				t.Errorf("%s imports %s, which is not a package of DESIGN.md §2", path, p)
				continue
			}
			if !allowed(from, to) {
				t.Errorf("%s (%s) imports %s: imports must flow protocol <- store <- node <- testnet <- cmd, config a leaf", path, from, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLayerTableCoversEveryPackage keeps the table honest when a top-level
// package is added.
func TestLayerTableCoversEveryPackage(t *testing.T) {
	entries, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		matches, _ := filepath.Glob(filepath.Join(e, "*.go"))
		sub, _ := filepath.Glob(filepath.Join(e, "*", "*.go"))
		if len(matches)+len(sub) == 0 || e == "internal" {
			continue
		}
		if _, ok := layer[e]; !ok {
			t.Errorf("top-level package %s is not in the layer table", e)
		}
	}
}

func TestAllowedRule(t *testing.T) {
	for _, c := range []struct {
		from, to string
		ok       bool
	}{
		{"store", "protocol", true},
		{"node", "store", true},
		{"node", "config", true},
		{"cmd", "testnet", true},
		{"protocol", "store", false},
		{"protocol", "config", false},
		{"config", "protocol", false},
		{"store", "node", false},
		{"store", "config", false},
		{"node", "testnet", false},
		{"testnet", "cmd", false},
	} {
		if got := allowed(c.from, c.to); got != c.ok {
			t.Errorf("allowed(%s, %s) = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
}

// nodeRooms are the sub-packages of node and what each may import of
// node: the services import only the shared rooms (service, trust, and
// logs for a library's logger), never each other, so that each depends
// on its neighbours through interfaces it declares; the API likewise,
// with its own web dashboard (static files and their handler, importing
// nothing of node); only the composition root (node itself) imports them
// all.
var nodeRooms = map[string][]string{
	"node/service":       {},
	"node/trust":         {},
	"node/logs":          {},
	"node/ingest":        {"node/service", "node/trust"},
	"node/gossip":        {"node/service", "node/trust", "node/logs"},
	"node/fetch":         {"node/service", "node/trust"},
	"node/reconcile":     {"node/service", "node/trust"},
	"node/checkpoint":    {"node/service", "node/trust"},
	"node/witness":       {"node/service", "node/trust"},
	"node/verify":        {"node/service", "node/trust"},
	"node/incidents":     {"node/service"},
	"node/api":           {"node/service", "node/trust", "node/api/dashboard"},
	"node/api/dashboard": {},
	"node/access":        {"node/service", "node/trust"},
	"node/deliver":       {"node/service", "node/trust"},
	"node/notices":       {"node/service", "node/trust"},
	"node/rejoin":        {"node/service"},
}

// TestNodeRooms fails if a node service imports another service (or the
// composition root), or if a sub-package of node is missing from
// nodeRooms.
func TestNodeRooms(t *testing.T) {
	dirs, err := filepath.Glob("node/*")
	if err != nil {
		t.Fatal(err)
	}
	for room := range nodeRooms {
		if strings.Count(room, "/") > 1 { // a room inside a room: node/api/dashboard
			dirs = append(dirs, room)
		}
	}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		if len(files) == 0 {
			continue
		}
		room := filepath.ToSlash(dir)
		allowedRooms, ok := nodeRooms[room]
		if !ok {
			t.Errorf("%s is not in nodeRooms: say what it may import", room)
			continue
		}
		for _, path := range files {
			f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(path, "_test.go") {
				continue // tests may use node/internal/nodetest
			}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				rel, ours := strings.CutPrefix(p, module+"/")
				if !ours || (rel != "node" && !strings.HasPrefix(rel, "node/")) || rel == room {
					continue
				}
				if !slices.Contains(allowedRooms, rel) {
					t.Errorf("%s imports %s: a node service meets its neighbours through interfaces, and only node itself composes them", path, rel)
				}
			}
		}
	}
}

// TestOfflineCheckImportsNoNode: what an auditor needs to re-check a
// receipt bundle (protocol and config) opens no socket and no database:
// its import graph has no libp2p host or transport, no pubsub, no Badger
// and no HTTP.
func TestOfflineCheckImportsNoNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "./protocol", "./config").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{"github.com/dgraph-io/badger", "github.com/libp2p/go-libp2p/p2p/", "github.com/libp2p/go-libp2p-pubsub",
		"github.com/quic-go/", "net/http", module + "/node", module + "/store"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("protocol or config depends on %s", dep)
			}
		}
	}
}
