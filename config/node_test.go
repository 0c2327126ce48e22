package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
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
	if n.API.Listen != "127.0.0.1:8101" || !n.APILoopback() {
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

// TestParseNodeAPITable: the [api] table, and the api = "host:port" of
// earlier versions read as its listen.
func TestParseNodeAPITable(t *testing.T) {
	n, err := ParseNode([]byte(minimalNodeTOML + `
[api]
listen = "0.0.0.0:8101"
hosts = ["node.example", "10.0.0.5"]
cors_origins = ["https://dash.example", "http://localhost:3000"]

[limits]
rate = 20.5
public_rate = 2.0
max_connections = 64
max_connections_per_client = 8
max_streams = 32
`))
	if err != nil {
		t.Fatal(err)
	}
	want := API{Listen: "0.0.0.0:8101", Hosts: []string{"node.example", "10.0.0.5"}, CORSOrigins: []string{"https://dash.example", "http://localhost:3000"}}
	if !reflect.DeepEqual(n.API, want) {
		t.Errorf("api = %+v, want %+v", n.API, want)
	}
	if l := n.Limits; l.Rate != 20.5 || l.PublicRate != 2 || l.Burst != 2000 || l.MaxConnections != 64 || l.MaxConnectionsPerClient != 8 {
		t.Errorf("limits = %+v", l)
	}
	old, err := ParseNode([]byte(minimalNodeTOML + `api = "127.0.0.1:9000"` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if old.API.Listen != "127.0.0.1:9000" || old.API.Hosts == nil || len(old.API.Hosts) != 0 {
		t.Errorf("old form: api = %+v", old.API)
	}
	// What init writes is the table, and reads back the same.
	b, err := n.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "[api]") {
		t.Errorf("marshalled config has no [api] table:\n%s", b)
	}
	back, err := ParseNode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.API, n.API) || back.Limits != n.Limits {
		t.Errorf("round trip: api %+v limits %+v", back.API, back.Limits)
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
		{"api without port", minimalNodeTOML + `api = "127.0.0.1"`, "api.listen: "},
		{"api bad port", minimalNodeTOML + `api = "127.0.0.1:http"`, "api.listen: "},
		{"api port too large", minimalNodeTOML + `api = "127.0.0.1:70000"`, "api.listen: "},
		{"api bad host", minimalNodeTOML + `api = "local_host:8101"`, "api.listen: "},
		{"api table bad listen", minimalNodeTOML + "[api]\nlisten = \"127.0.0.1\"\n", "api.listen: "},
		{"api host with port", minimalNodeTOML + "[api]\nhosts = [\"node.example:8101\"]\n", "api.hosts[0]: \"node.example:8101\""},
		{"api host not a name", minimalNodeTOML + "[api]\nhosts = [\"node.example\", \"ev il\"]\n", "api.hosts[1]: "},
		{"cors origin with path", minimalNodeTOML + "[api]\ncors_origins = [\"https://dash.example/app\"]\n", "api.cors_origins[0]: "},
		{"cors origin without scheme", minimalNodeTOML + "[api]\ncors_origins = [\"dash.example\"]\n", "api.cors_origins[0]: "},
		{"api unknown key", minimalNodeTOML + "[api]\nport = 1\n", `unknown key "api.port"`},
		{"per-client over total", minimalNodeTOML + "[limits]\nmax_connections = 10\nmax_connections_per_client = 11\nmax_streams = 5\n", "limits.max_connections_per_client: 11: must be 1 to limits.max_connections (10)"},
		{"streams over connections", minimalNodeTOML + "[limits]\nmax_connections = 100\nmax_connections_per_client = 10\n", "limits.max_streams: 2048: more than limits.max_connections (100)"},
		{"negative rate", minimalNodeTOML + "[limits]\nrate = -1.0\n", "limits.rate: -1: must be positive"},
		{"peer watermarks crossed", minimalNodeTOML + "[gossip]\npeer_connections_low = 300\n", "gossip.peer_connections_low: 300, high 192"},
		{"peer high over max", minimalNodeTOML + "[gossip]\nmax_peer_connections = 100\n", "want 0 < low ≤ high ≤ max"},
		{"negative burst", minimalNodeTOML + "[limits]\nburst = -3\n", "limits.burst: -3: must be positive"},
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
		n := Node{API: API{Listen: api}}
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

// TestLoadRefusesFilesOthersMayWrite: a config or federation file that
// any user may write is refused (ErrWritable), with the chmod to run;
// LoadOptions.AllowWritable starts anyway and warns. A file its group may
// write (umask 002) is accepted.
func TestLoadRefusesFilesOthersMayWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not say who may write on Windows")
	}
	x := newIDs(t)
	home := t.TempDir()
	fed := filepath.Join(home, "federation.toml")
	conf := filepath.Join(home, ConfigFile)
	for path, data := range map[string]string{fed: x.expand(validFederationTOML), conf: "federation = \"federation.toml\"\njurisdiction = \"DE\"\n"} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func(opts LoadOptions) error {
		n, err := LoadWith(home, opts)
		if err != nil {
			return err
		}
		_, err = n.LoadFederation()
		return err
	}
	if err := load(LoadOptions{}); err != nil {
		t.Fatalf("0600 files: %v", err)
	}
	for _, path := range []string{conf, fed} {
		for _, mode := range []os.FileMode{0o666, 0o646, 0o602} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
			err := load(LoadOptions{})
			if !errors.Is(err, ErrWritable) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod o-w") {
				t.Errorf("%s mode %04o: error = %v, want ErrWritable naming the file and the chmod", filepath.Base(path), mode, err)
			}
			var warned []error
			if err := load(LoadOptions{AllowWritable: true, Warn: func(err error) { warned = append(warned, err) }}); err != nil || len(warned) != 1 || !errors.Is(warned[0], ErrWritable) {
				t.Errorf("%s mode %04o, allowed: error %v, warnings %v", filepath.Base(path), mode, err, warned)
			}
		}
		if err := os.Chmod(path, 0o664); err != nil {
			t.Fatal(err)
		}
		if err := load(LoadOptions{}); err != nil {
			t.Errorf("%s group-writable 0664: %v", filepath.Base(path), err)
		}
	}
}
