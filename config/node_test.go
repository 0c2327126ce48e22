package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const minimalNodeTOML = `
federation = "/etc/entente/federation.toml"
jurisdiction = "DE"
`

func TestParseNodeDefaults(t *testing.T) {
	n, err := ParseNode([]byte(minimalNodeTOML))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Federation = "/etc/entente/federation.toml"
	want.Jurisdiction = "DE"
	if !reflect.DeepEqual(*n, want) {
		t.Errorf("got  %+v\nwant %+v", *n, want)
	}
	if !slices.Equal(n.Listen, []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"}) {
		t.Errorf("default listen = %v", n.Listen)
	}
	if n.API != "127.0.0.1:8101" || !n.APILoopback() {
		t.Errorf("default api = %q, loopback %v", n.API, n.APILoopback())
	}
}

func TestParseNodeSettings(t *testing.T) {
	n, err := ParseNode([]byte(minimalNodeTOML + `
listen = ["/ip4/127.0.0.1/tcp/0"]
announce = ["/dns4/node.example/tcp/4101"]
api = "[::1]:0"
trust = ["FR", "DE"]

[gossip]
sync_interval = "1m30s"

[log]
level = "debug"
format = "json"

[limits]
max_body_bytes = 65536
http_write_timeout = "2m"
`))
	if err != nil {
		t.Fatal(err)
	}
	if n.Gossip.SyncInterval.Duration != 90*time.Second || n.Gossip.WitnessInterval.Duration != 10*time.Second {
		t.Errorf("gossip = %+v", n.Gossip)
	}
	if n.Limits.MaxBodyBytes != 65536 || n.Limits.HTTPWriteTimeout.Duration != 2*time.Minute || n.Limits.MaxBatch != 1000 {
		t.Errorf("limits = %+v", n.Limits)
	}
	if n.Log.SlogLevel().String() != "DEBUG" || n.Log.Format != LogJSON {
		t.Errorf("log = %+v", n.Log)
	}
	if !n.APILoopback() {
		t.Errorf("[::1] not seen as loopback")
	}
	addrs, err := n.AnnounceAddrs()
	if err != nil || len(addrs) != 1 {
		t.Errorf("AnnounceAddrs() = %v, %v", addrs, err)
	}
}

func TestParseNodeInvalid(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want string
	}{
		{"unknown key", minimalNodeTOML + "listen_addrs = []\n", `unknown key "listen_addrs"`},
		{"unknown key in table", minimalNodeTOML + "[limits]\nmax_records = 3\n", `unknown key "limits.max_records"`},
		{"unknown table", minimalNodeTOML + "[p2p]\nport = 3\n", `unknown key "p2p"`},
		{"key in wrong case", minimalNodeTOML + "[Log]\nlevel = \"info\"\n", `unknown key "Log" (keys are case-sensitive: write "log")`},
		{"missing federation", `jurisdiction = "DE"`, "federation: missing"},
		{"missing jurisdiction", `federation = "f.toml"`, "jurisdiction: "},
		{"lower-case jurisdiction", "federation = \"f.toml\"\njurisdiction = \"de\"", "jurisdiction: \"de\""},
		{"wrong type", minimalNodeTOML + "listen = \"/ip4/0.0.0.0/tcp/1\"\n", "listen"},
		{"listen not a multiaddr", minimalNodeTOML + `listen = ["/ip4/0.0.0.0/tcp/1", "0.0.0.0:4101"]`, "listen[1]: not a multiaddr"},
		{"listen with p2p", minimalNodeTOML + `listen = ["/ip4/0.0.0.0/tcp/1/p2p/12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8"]`, "listen[0]: "},
		{"announce not a multiaddr", minimalNodeTOML + `announce = ["node.example:4101"]`, "announce[0]: not a multiaddr"},
		{"api without port", minimalNodeTOML + `api = "127.0.0.1"`, "api: "},
		{"api bad port", minimalNodeTOML + `api = "127.0.0.1:http"`, "api: "},
		{"api port too large", minimalNodeTOML + `api = "127.0.0.1:70000"`, "api: "},
		{"api bad host", minimalNodeTOML + `api = "local_host:8101"`, "api: "},
		{"trust bad code", minimalNodeTOML + `trust = ["DE", "France"]`, "trust[1]: \"France\""},
		{"trust duplicate", minimalNodeTOML + `trust = ["DE", "FR", "DE"]`, "trust[2]: DE is listed twice"},
		{"trust without own jurisdiction", minimalNodeTOML + `trust = ["FR"]`, "trust: must include the node's own jurisdiction DE"},
		{"log level", minimalNodeTOML + "[log]\nlevel = \"verbose\"\n", "log.level: \"verbose\""},
		{"log format", minimalNodeTOML + "[log]\nformat = \"yaml\"\n", "log.format: \"yaml\""},
		{"body below record size", minimalNodeTOML + "[limits]\nmax_body_bytes = 1000\n", "limits.max_body_bytes: 1000: must be at least 65536"},
		{"negative batch", minimalNodeTOML + "[limits]\nmax_batch = -1\n", "limits.max_batch: -1"},
		{"batch beyond a receipt", minimalNodeTOML + "[limits]\nmax_batch = 1001\n", "limits.max_batch: 1001: must be 1 to 1000"},
		{"negative concurrency", minimalNodeTOML + "[limits]\nmax_concurrent_requests = -5\n", "limits.max_concurrent_requests: -5"},
		{"bad duration", minimalNodeTOML + "[gossip]\nsync_interval = \"fast\"\n", "gossip.sync_interval: "},
		{"negative duration", minimalNodeTOML + "[limits]\nhttp_read_timeout = \"-1s\"\n", "limits.http_read_timeout: -1s: must be positive"},
		{"bare number duration", minimalNodeTOML + "[gossip]\nwitness_interval = 10\n", "gossip.witness_interval: 10 is not a duration string"},
		{"negative interval", minimalNodeTOML + "[gossip]\nsync_interval = \"-1s\"\n", "gossip.sync_interval: -1s: must be positive"},
		{"zero pending ingest", minimalNodeTOML + "[limits]\nmax_pending_ingest = -1\n", "limits.max_pending_ingest: -1"},
		{"removed setting", minimalNodeTOML + "[gossip]\nfetch_timeout = \"10s\"\n", `unknown key "gossip.fetch_timeout" (removed: it was never applied`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode([]byte(tt.toml))
			if err == nil {
				t.Fatalf("accepted: %+v", n)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateReportsFieldError(t *testing.T) {
	n := Defaults()
	n.Federation = "f.toml"
	n.Jurisdiction = "DE"
	n.Listen = []string{"nope"}
	var fe *FieldError
	if err := n.Validate(); !errors.As(err, &fe) || fe.Field != "listen[0]" {
		t.Errorf("Validate() = %v, want a *FieldError for listen[0]", err)
	}
}

func TestNodeMarshalRoundTrip(t *testing.T) {
	n := Defaults()
	n.Federation = "/etc/entente/federation.toml"
	n.Jurisdiction = "BR"
	n.Trust = []string{"BR", "DE"}
	n.Announce = []string{"/ip4/203.0.113.7/tcp/4101"}
	n.Gossip.SyncInterval.Duration = 90 * time.Second
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseNode(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(*got, n) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", *got, n)
	}
}

func TestLoadResolvesPaths(t *testing.T) {
	home := t.TempDir()
	conf := `
federation = "../shared/federation.toml"
jurisdiction = "DE"
key = "/secrets/node.key"
data = "db"
`
	if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if n.Home != home {
		t.Errorf("Home = %q, want %q", n.Home, home)
	}
	for _, c := range []struct{ got, want string }{
		{n.FederationPath(), filepath.Join(filepath.Dir(home), "shared", "federation.toml")},
		{n.KeyPath(), "/secrets/node.key"},
		{n.APITokenPath(), filepath.Join(home, "api-token")},
		{n.DataDir(), filepath.Join(home, "db")},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	home := t.TempDir()
	_, err := Load(home)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "entente init") {
		t.Errorf("missing config: error = %v", err)
	}

	path := filepath.Join(home, ConfigFile)
	if err := os.WriteFile(path, []byte(minimalNodeTOML+`listen = ["bad"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(home)
	if want := path + ": listen[0]: not a multiaddr"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want prefix %q", err, want)
	}
}

func TestAPILoopback(t *testing.T) {
	for api, want := range map[string]bool{
		"127.0.0.1:8101": true,
		"[::1]:8101":     true,
		"localhost:8101": true,
		"0.0.0.0:8101":   false,
		":8101":          false,
		"10.0.0.5:8101":  false,
		"node.example:1": false,
	} {
		n := Node{API: api}
		if got := n.APILoopback(); got != want {
			t.Errorf("APILoopback(%q) = %v, want %v", api, got, want)
		}
	}
}

func TestNodeLoadFederation(t *testing.T) {
	x := newIDs(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "federation.toml"), []byte(x.expand(validFederationTOML)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := Defaults()
	n.Home = dir
	n.Federation = "federation.toml"
	n.Jurisdiction = "DE"

	f, err := n.LoadFederation()
	if err != nil || len(f.Jurisdictions) != 3 {
		t.Fatalf("no trust: %v, %v", f, err)
	}

	n.Trust = []string{"DE", "BR"}
	f, err = n.LoadFederation()
	if err != nil || !slices.Equal(f.Codes(), []string{"DE", "BR"}) {
		t.Fatalf("trust DE, BR: %v, %v", f, err)
	}

	n.Trust = []string{"DE", "US"}
	if _, err := n.LoadFederation(); err == nil || !strings.Contains(err.Error(), "trust: ") || !strings.Contains(err.Error(), "US") {
		t.Errorf("unknown trusted code: error = %v", err)
	}

	n.Trust = nil
	n.Jurisdiction = "US"
	if _, err := n.LoadFederation(); err == nil || !strings.Contains(err.Error(), "jurisdiction: US is not in federation") {
		t.Errorf("unknown own jurisdiction: error = %v", err)
	}
}
