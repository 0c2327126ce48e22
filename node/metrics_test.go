package node_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/testnet"
)

// TestBuildInfo: /metrics carries entente_build_info, 1, labelled with
// what node.BuildInfo reports, and /v1/status its version.
func TestBuildInfo(t *testing.T) {
	tn := startNet(t, 1)
	c := newAPIClient(t, tn.Nodes[0])
	b := node.BuildInfo()
	commit := b.Commit
	if commit == "" {
		commit = "unknown"
	}
	if b.Version == "" || b.GoVersion == "" {
		t.Fatalf("BuildInfo = %+v: no version or Go version", b)
	}

	resp := c.get("/metrics", "")
	if resp.status != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", resp.status)
	}
	want := fmt.Sprintf("entente_build_info{commit=%q,go_version=%q,version=%q} 1\n", commit, b.GoVersion, b.Version)
	if !strings.Contains(string(resp.body), want) {
		var got []string
		for _, l := range strings.Split(string(resp.body), "\n") {
			if strings.HasPrefix(l, "entente_build_info") {
				got = append(got, l)
			}
		}
		t.Errorf("/metrics lacks %q; has %q", want, got)
	}

	var st struct{ Version string }
	decodeJSON(t, c.get("/v1/status", "").body, &st)
	if st.Version != b.Version {
		t.Errorf("/v1/status version %q, want %q", st.Version, b.Version)
	}
}

// TestStoreDiskMetrics: a node on disk reports the bytes its data
// directory takes and the room on its filesystem (the disk alert of
// deploy/alerts.yml); a node in memory reports neither.
func TestStoreDiskMetrics(t *testing.T) {
	tn, err := testnet.Start(testnet.Options{Nodes: 1, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	reg := tn.Nodes[0].Registry()
	vlog := metricValue(t, reg, "entente_store_disk_bytes", map[string]string{"part": "vlog"})
	avail := metricValue(t, reg, "entente_store_filesystem_avail_bytes", nil)
	size := metricValue(t, reg, "entente_store_filesystem_size_bytes", nil)
	if vlog <= 0 {
		t.Errorf("entente_store_disk_bytes{part=vlog} = %v: an open Badger directory has its logs", vlog)
	}
	if size <= 0 || avail <= 0 || avail > size {
		t.Errorf("filesystem: %v bytes free of %v", avail, size)
	}

	mem := startNet(t, 1).Nodes[0].Registry()
	families, err := mem.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f.GetName(), "entente_store_") {
			t.Errorf("a node in memory reports %s", f.GetName())
		}
	}
}
