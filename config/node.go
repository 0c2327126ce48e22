package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pelletier/go-toml/v2"
)

// Names of the files in a node's home directory, as entente init writes them.
const (
	ConfigFile       = "config.toml"
	DefaultKeyFile   = "node.key"
	DefaultTokenFile = "api-token"
	DefaultDataDir   = "data"
	// APIAddressFile holds, while the node runs, the address its API
	// listens on (entente run writes it; other commands and testnet read
	// it rather than config.toml's api, which may name port 0).
	APIAddressFile = "api-address"
)

// Default network addresses.
const (
	DefaultListenTCP  = "/ip4/0.0.0.0/tcp/4101"
	DefaultListenQUIC = "/ip4/0.0.0.0/udp/4101/quic-v1"
	DefaultAPI        = "127.0.0.1:8101"
)

// Log levels and formats accepted in [log].
const (
	LogDebug = "debug"
	LogInfo  = "info"
	LogWarn  = "warn"
	LogError = "error"

	LogText = "text"
	LogJSON = "json"
)

// maxRecordBytes is the protocol's fixed record size limit (DESIGN §4). It is
// not configurable; an HTTP body limit below it would refuse valid records.
const maxRecordBytes = 64 << 10

// maxDecisions is the protocol's limit on the decisions one receipt signs
// (DESIGN §4): a verify-batch of more could not be signed.
const maxDecisions = 1000

// maxConfigFileBytes caps what Load reads.
const maxConfigFileBytes = 1 << 20

// Node is a node's configuration, DIR/config.toml. A zero field means the
// documented default: ApplyDefaults fills them in, and Load does so before
// validating. Relative paths are relative to Home.
type Node struct {
	// Home is the node's home directory. It is not in the file: Load sets
	// it to the (absolute) directory the file was read from.
	Home string `toml:"-"`
	// opts are how it was loaded (LoadWith).
	opts LoadOptions

	Federation   string `toml:"federation" comment:"federation file; a relative path is relative to this directory"`
	Jurisdiction string `toml:"jurisdiction" comment:"this node's jurisdiction, a code of the federation file"`
	Key          string `toml:"key" comment:"node key file (libp2p Ed25519 private key, mode 0600)"`
	APIToken     string `toml:"api_token" comment:"the operator's bearer token file: it may call every endpoint of the HTTP API (0600)"`
	Data         string `toml:"data" comment:"data directory (Badger)"`
	// Listen lists the libp2p listen multiaddrs (no /p2p part).
	Listen []string `toml:"listen" comment:"libp2p listen addresses"`
	// Announce, when set, replaces the addresses the node advertises to
	// peers (for a node behind NAT or a load balancer).
	Announce []string `toml:"announce,omitempty" comment:"addresses advertised to peers instead of the listen addresses"`
	// API is the HTTP API: where it listens and whom it answers.
	API API `toml:"api" comment:"the HTTP API (DESIGN.md §8)"`
	// Trust restricts the jurisdictions this node recognises; empty means
	// all of the federation file. If set, it must include Jurisdiction.
	Trust []string `toml:"trust" comment:"jurisdictions recognised; empty means all"`

	Gossip Gossip `toml:"gossip" comment:"exchange with peers; durations are Go duration strings"`
	Log    Log    `toml:"log" comment:"the node's own logging"`
	Limits Limits `toml:"limits" comment:"HTTP API and ingest limits (the 64 KiB record limit is the protocol's)"`
}

// API is the [api] table. Files of earlier versions held only the
// address, as api = "host:port"; they still load (UnmarshalText).
type API struct {
	// Listen is the API's host:port. Loopback by default; every route
	// but the public ones needs a token wherever it listens.
	Listen string `toml:"listen" comment:"host:port the API listens on; loopback unless you mean it"`
	// Hosts are the names, besides localhost and the address a request
	// arrived at, that the API answers to in a request's Host header;
	// others get 421 (DNS rebinding). "*" answers every name (behind a
	// proxy that checks them).
	Hosts []string `toml:"hosts" comment:"DNS names clients use to reach the API (Host header); \"*\" for any"`
	// CORSOrigins are the web origins (scheme://host[:port]) whose pages
	// may call the API from a browser; "*" for any. Empty: none.
	CORSOrigins []string `toml:"cors_origins" comment:"web origins allowed to call the API from a browser (CORS)"`
}

// UnmarshalText reads the api = "host:port" of earlier versions.
func (a *API) UnmarshalText(b []byte) error {
	*a = API{Listen: string(b)}
	return nil
}

// Gossip tunes how the node keeps in step with its peers.
type Gossip struct {
	// SyncInterval is how often the node reconciles its records with a
	// peer, to catch what gossip missed. Default 30s.
	SyncInterval Duration `toml:"sync_interval" comment:"how often to reconcile records with each peer"`
	// CheckpointInterval is how often the node signs a checkpoint of its
	// log, when it has grown. Default 10s.
	CheckpointInterval Duration `toml:"checkpoint_interval" comment:"how often to sign a checkpoint of the log, when it grew"`
	// WitnessInterval is how often the node asks each peer for its latest
	// checkpoint, checks and cosigns it. Default 10s.
	WitnessInterval Duration `toml:"witness_interval" comment:"how often to witness (check and cosign) each peer's checkpoint"`
	// ReconnectInterval is how often the node dials the members it is not
	// connected to. Default 5s.
	ReconnectInterval Duration `toml:"reconnect_interval" comment:"how often to dial members the node is not connected to"`
	// MaxPeerConnections bounds the node's libp2p connections, inbound
	// and outbound (the resource manager). Default 512; at least twice
	// the federation's other member nodes.
	MaxPeerConnections int `toml:"max_peer_connections" comment:"libp2p connections in all; at least twice the other member nodes"`
	// PeerConnectionsLow and PeerConnectionsHigh are the connection
	// manager's watermarks: past High it closes connections of
	// non-members down to Low (members' are protected). Defaults 160 and
	// 192; High at least the other member nodes.
	PeerConnectionsLow  int `toml:"peer_connections_low" comment:"connection manager: trims non-members' connections down to this"`
	PeerConnectionsHigh int `toml:"peer_connections_high" comment:"connection manager: trims past this; at least the other member nodes"`
}

// Log configures the node's own logging (slog).
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `toml:"level" comment:"debug, info, warn or error"`
	// Format is text or json. Default text.
	Format string `toml:"format" comment:"text or json"`
}

// Limits bound the HTTP API and ingest. The record size limit (64 KiB)
// is fixed by the protocol and is not here.
type Limits struct {
	// MaxBodyBytes caps a request body; larger ones get 413. At least 64 KiB.
	// Default 1 MiB.
	MaxBodyBytes int64 `toml:"max_body_bytes" comment:"largest HTTP request body, bytes (at least 65536)"`
	// MaxBatch caps the requests of one verify-batch call. Default 1000.
	MaxBatch int `toml:"max_batch" comment:"most transfer requests in one verify-batch call"`
	// MaxConcurrentRequests caps HTTP requests in flight; beyond it the API
	// answers 503 overloaded. Default 256.
	MaxConcurrentRequests int `toml:"max_concurrent_requests" comment:"HTTP requests in flight before 503 overloaded"`
	// MaxStreams caps the API's open event streams (incidents), which
	// do not count as requests in flight; beyond it a new stream is
	// answered 503 overloaded. Default 2048.
	MaxStreams int `toml:"max_streams" comment:"open event streams (incidents) before 503 overloaded"`
	// MaxPendingIngest caps records being ingested at once from the API;
	// beyond it the API answers 503 overloaded. Default 4096.
	MaxPendingIngest int `toml:"max_pending_ingest" comment:"records being ingested at once from the API before 503 overloaded"`
	// MaxRecordAge is how far back from now a transfer decision's time
	// may lie for the node to sign it (further back, it answers unsigned,
	// for audits of the past); the freshness window of records
	// (DESIGN.md §4). Default 10m.
	MaxRecordAge Duration `toml:"max_record_age" comment:"how old a decision time may be for the node to sign the verdict (older: answered unsigned)"`
	// HTTPReadHeaderTimeout bounds reading a request's headers. Default 5s.
	HTTPReadHeaderTimeout Duration `toml:"http_read_header_timeout" comment:"time allowed to read a request's headers"`
	// HTTPReadTimeout bounds reading a request, headers and body.
	// Default 30s.
	HTTPReadTimeout Duration `toml:"http_read_timeout" comment:"time allowed to read a request"`
	// HTTPWriteTimeout bounds writing a response (event streams excepted).
	// Default 60s.
	HTTPWriteTimeout Duration `toml:"http_write_timeout" comment:"time allowed to write a response (event streams excepted)"`
	// HTTPIdleTimeout bounds a keep-alive connection's wait for its next
	// request. Default 30s.
	HTTPIdleTimeout Duration `toml:"http_idle_timeout" comment:"time a keep-alive connection may wait for its next request"`
	// MaxConnections caps the API's open connections; past it a new one
	// is closed at once. Default 4096.
	MaxConnections int `toml:"max_connections" comment:"open HTTP connections, in all"`
	// MaxConnectionsPerClient caps the open connections of one client
	// address (event streams hold one each). Default 256.
	MaxConnectionsPerClient int `toml:"max_connections_per_client" comment:"open HTTP connections from one client address"`
	// Rate is each caller's sustained request rate, per second: a token's
	// caller, or for the public a client address; past it 429
	// rate_limited. The operator is not limited. Default 1000.
	Rate float64 `toml:"rate" comment:"requests per second of one caller (token, or address without one); operator unlimited"`
	// Burst is how many requests a caller may make at once above Rate.
	// Default 2000.
	Burst int `toml:"burst" comment:"requests a caller may make at once above its rate"`
	// PublicRate is the rate of one client address without a token, per
	// second. Default 50.
	PublicRate float64 `toml:"public_rate" comment:"requests per second of one client address without a token"`
}

// Defaults returns a Node holding the default of every field that has one.
// Federation and Jurisdiction have none.
func Defaults() Node {
	return Node{
		Key:      DefaultKeyFile,
		APIToken: DefaultTokenFile,
		Data:     DefaultDataDir,
		Listen:   []string{DefaultListenTCP, DefaultListenQUIC},
		API:      API{Listen: DefaultAPI, Hosts: []string{}, CORSOrigins: []string{}},
		Trust:    []string{},
		Gossip: Gossip{
			SyncInterval:        Duration{30 * time.Second},
			CheckpointInterval:  Duration{10 * time.Second},
			WitnessInterval:     Duration{10 * time.Second},
			ReconnectInterval:   Duration{5 * time.Second},
			MaxPeerConnections:  512,
			PeerConnectionsLow:  160,
			PeerConnectionsHigh: 192,
		},
		Log: Log{Level: LogInfo, Format: LogText},
		Limits: Limits{
			MaxBodyBytes:            1 << 20,
			MaxBatch:                maxDecisions,
			MaxConcurrentRequests:   256,
			MaxStreams:              2048,
			MaxPendingIngest:        4096,
			MaxRecordAge:            Duration{10 * time.Minute},
			HTTPReadHeaderTimeout:   Duration{5 * time.Second},
			HTTPReadTimeout:         Duration{30 * time.Second},
			HTTPWriteTimeout:        Duration{60 * time.Second},
			HTTPIdleTimeout:         Duration{30 * time.Second},
			MaxConnections:          4096,
			MaxConnectionsPerClient: 256,
			Rate:                    1000,
			Burst:                   2000,
			PublicRate:              50,
		},
	}
}

// ApplyDefaults replaces every zero field that has a default with it.
func (n *Node) ApplyDefaults() {
	d := Defaults()
	setString(&n.Key, d.Key)
	setString(&n.APIToken, d.APIToken)
	setString(&n.Data, d.Data)
	if len(n.Listen) == 0 {
		n.Listen = d.Listen
	}
	setString(&n.API.Listen, d.API.Listen)
	if n.API.Hosts == nil {
		n.API.Hosts = d.API.Hosts
	}
	if n.API.CORSOrigins == nil {
		n.API.CORSOrigins = d.API.CORSOrigins
	}
	if n.Trust == nil {
		n.Trust = d.Trust
	}
	setZero(&n.Gossip.SyncInterval, d.Gossip.SyncInterval)
	setZero(&n.Gossip.CheckpointInterval, d.Gossip.CheckpointInterval)
	setZero(&n.Gossip.WitnessInterval, d.Gossip.WitnessInterval)
	setZero(&n.Gossip.ReconnectInterval, d.Gossip.ReconnectInterval)
	setZero(&n.Gossip.MaxPeerConnections, d.Gossip.MaxPeerConnections)
	setZero(&n.Gossip.PeerConnectionsLow, d.Gossip.PeerConnectionsLow)
	setZero(&n.Gossip.PeerConnectionsHigh, d.Gossip.PeerConnectionsHigh)
	setString(&n.Log.Level, d.Log.Level)
	setString(&n.Log.Format, d.Log.Format)
	setZero(&n.Limits.MaxBodyBytes, d.Limits.MaxBodyBytes)
	setZero(&n.Limits.MaxBatch, d.Limits.MaxBatch)
	setZero(&n.Limits.MaxConcurrentRequests, d.Limits.MaxConcurrentRequests)
	setZero(&n.Limits.MaxStreams, d.Limits.MaxStreams)
	setZero(&n.Limits.MaxPendingIngest, d.Limits.MaxPendingIngest)
	setZero(&n.Limits.MaxRecordAge, d.Limits.MaxRecordAge)
	setZero(&n.Limits.HTTPReadHeaderTimeout, d.Limits.HTTPReadHeaderTimeout)
	setZero(&n.Limits.HTTPReadTimeout, d.Limits.HTTPReadTimeout)
	setZero(&n.Limits.HTTPWriteTimeout, d.Limits.HTTPWriteTimeout)
	setZero(&n.Limits.HTTPIdleTimeout, d.Limits.HTTPIdleTimeout)
	setZero(&n.Limits.MaxConnections, d.Limits.MaxConnections)
	setZero(&n.Limits.MaxConnectionsPerClient, d.Limits.MaxConnectionsPerClient)
	setZero(&n.Limits.Rate, d.Limits.Rate)
	setZero(&n.Limits.Burst, d.Limits.Burst)
	setZero(&n.Limits.PublicRate, d.Limits.PublicRate)
}

func setString(p *string, def string) {
	if *p == "" {
		*p = def
	}
}

func setZero[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// LoadOptions relax what Load refuses.
type LoadOptions struct {
	// AllowWritable accepts a config or federation file that others may
	// write, calling Warn (when set) instead of refusing it.
	AllowWritable bool
	Warn          func(err error)
}

// Load reads home/config.toml, applies defaults and validates it. Unknown
// keys are errors, and so is a file others may write (ErrWritable; Node.LoadFederation refuses such a federation file too).
// Errors start with the file's path and name the field. The returned
// Node's Home is home made absolute.
func Load(home string) (*Node, error) { return LoadWith(home, LoadOptions{}) }

// LoadWith is Load with options.
func LoadWith(home string, opts LoadOptions) (*Node, error) {
	if home == "" {
		return nil, errors.New("no home directory given")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("home directory: %w", err)
	}
	path := filepath.Join(abs, ConfigFile)
	if err := opts.check("node config", path); err != nil {
		return nil, err
	}
	data, err := readCapped(path, maxConfigFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no node config at %s (run entente init): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	n, err := ParseNode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n.Home = abs
	n.opts = opts
	return n, nil
}

// check applies checkNotWritable as the options say.
func (o LoadOptions) check(what, path string) error {
	err := checkNotWritable(what, path)
	if err != nil && o.AllowWritable {
		if o.Warn != nil {
			o.Warn(err)
		}
		return nil
	}
	return err
}

// ParseNode decodes a node config strictly, applies defaults and validates
// it. Home is left empty.
func ParseNode(data []byte) (*Node, error) {
	var n Node
	if err := decodeStrict(data, &n); err != nil {
		if ferr := n.checkDurationTypes(data); ferr != nil {
			return nil, ferr
		}
		return nil, err
	}
	if len(n.Announce) == 0 {
		n.Announce = nil // "announce = []" and no key mean the same
	}
	n.ApplyDefaults()
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return &n, nil
}

// Validate checks n as it stands (call ApplyDefaults first to accept zero
// fields) and returns the first broken field as a *FieldError.
func (n *Node) Validate() error {
	if n.Federation == "" {
		return fieldErr("federation", "missing path of the federation file")
	}
	if n.Jurisdiction == "" {
		return fieldErr("jurisdiction", "missing jurisdiction code")
	}
	if !validCode(n.Jurisdiction) {
		return fieldErr("jurisdiction", "%q is not an upper-case ISO 3166-1 alpha-2 code", n.Jurisdiction)
	}
	for _, f := range []struct{ field, path string }{
		{"key", n.Key}, {"api_token", n.APIToken}, {"data", n.Data},
	} {
		if f.path == "" {
			return fieldErr(f.field, "missing path")
		}
	}
	if len(n.Listen) == 0 {
		return fieldErr("listen", "no listen address")
	}
	if err := validateListenAddrs("listen", n.Listen); err != nil {
		return err
	}
	if err := validateListenAddrs("announce", n.Announce); err != nil {
		return err
	}
	if err := validateHostPort(n.API.Listen); err != nil {
		return &FieldError{Field: "api.listen", Err: err}
	}
	for i, h := range n.API.Hosts {
		if err := validateHostName(h); err != nil {
			return fieldErr(fmt.Sprintf("api.hosts[%d]", i), "%q: %v", h, err)
		}
	}
	for i, o := range n.API.CORSOrigins {
		if err := validateOrigin(o); err != nil {
			return fieldErr(fmt.Sprintf("api.cors_origins[%d]", i), "%q: %v", o, err)
		}
	}
	for i, code := range n.Trust {
		field := fmt.Sprintf("trust[%d]", i)
		if !validCode(code) {
			return fieldErr(field, "%q is not an upper-case ISO 3166-1 alpha-2 code", code)
		}
		if slices.Index(n.Trust, code) != i {
			return fieldErr(field, "%s is listed twice", code)
		}
	}
	if len(n.Trust) > 0 && !slices.Contains(n.Trust, n.Jurisdiction) {
		return fieldErr("trust", "must include the node's own jurisdiction %s", n.Jurisdiction)
	}
	for _, f := range n.durations() {
		if f.d.Duration <= 0 {
			return fieldErr(f.field, "%s: must be positive", f.d)
		}
	}
	switch n.Log.Level {
	case LogDebug, LogInfo, LogWarn, LogError:
	default:
		return fieldErr("log.level", "%q: want debug, info, warn or error", n.Log.Level)
	}
	switch n.Log.Format {
	case LogText, LogJSON:
	default:
		return fieldErr("log.format", "%q: want text or json", n.Log.Format)
	}
	if n.Limits.MaxBodyBytes < maxRecordBytes {
		return fieldErr("limits.max_body_bytes", "%d: must be at least %d, the largest record", n.Limits.MaxBodyBytes, maxRecordBytes)
	}
	if n.Limits.MaxBatch <= 0 || n.Limits.MaxBatch > maxDecisions {
		return fieldErr("limits.max_batch", "%d: must be 1 to %d, the most decisions one receipt signs", n.Limits.MaxBatch, maxDecisions)
	}
	if n.Limits.MaxConcurrentRequests <= 0 {
		return fieldErr("limits.max_concurrent_requests", "%d: must be positive", n.Limits.MaxConcurrentRequests)
	}
	if n.Limits.MaxStreams <= 0 {
		return fieldErr("limits.max_streams", "%d: must be positive", n.Limits.MaxStreams)
	}
	if n.Limits.MaxPendingIngest <= 0 {
		return fieldErr("limits.max_pending_ingest", "%d: must be positive", n.Limits.MaxPendingIngest)
	}
	if g := n.Gossip; g.PeerConnectionsLow <= 0 || g.PeerConnectionsLow > g.PeerConnectionsHigh || g.PeerConnectionsHigh > g.MaxPeerConnections {
		return fieldErr("gossip.peer_connections_low", "%d, high %d, max_peer_connections %d: want 0 < low ≤ high ≤ max",
			g.PeerConnectionsLow, g.PeerConnectionsHigh, g.MaxPeerConnections)
	}
	if n.Limits.MaxConnections <= 0 {
		return fieldErr("limits.max_connections", "%d: must be positive", n.Limits.MaxConnections)
	}
	if n.Limits.MaxConnectionsPerClient <= 0 || n.Limits.MaxConnectionsPerClient > n.Limits.MaxConnections {
		return fieldErr("limits.max_connections_per_client", "%d: must be 1 to limits.max_connections (%d)",
			n.Limits.MaxConnectionsPerClient, n.Limits.MaxConnections)
	}
	if n.Limits.MaxStreams > n.Limits.MaxConnections {
		return fieldErr("limits.max_streams", "%d: more than limits.max_connections (%d); each stream holds a connection",
			n.Limits.MaxStreams, n.Limits.MaxConnections)
	}
	for _, f := range []struct {
		field string
		v     float64
	}{{"limits.rate", n.Limits.Rate}, {"limits.public_rate", n.Limits.PublicRate}} {
		if !(f.v > 0) {
			return fieldErr(f.field, "%v: must be positive (requests per second)", f.v)
		}
	}
	if n.Limits.Burst <= 0 {
		return fieldErr("limits.burst", "%d: must be positive", n.Limits.Burst)
	}
	return nil
}

// durationField is a Duration setting and its TOML path.
type durationField struct {
	field string
	d     *Duration
}

// durations lists the Duration settings.
func (n *Node) durations() []durationField {
	return []durationField{
		{"gossip.sync_interval", &n.Gossip.SyncInterval},
		{"gossip.checkpoint_interval", &n.Gossip.CheckpointInterval},
		{"gossip.witness_interval", &n.Gossip.WitnessInterval},
		{"gossip.reconnect_interval", &n.Gossip.ReconnectInterval},
		{"limits.max_record_age", &n.Limits.MaxRecordAge},
		{"limits.http_read_header_timeout", &n.Limits.HTTPReadHeaderTimeout},
		{"limits.http_read_timeout", &n.Limits.HTTPReadTimeout},
		{"limits.http_write_timeout", &n.Limits.HTTPWriteTimeout},
		{"limits.http_idle_timeout", &n.Limits.HTTPIdleTimeout},
	}
}

// checkDurationTypes finds a duration written as a bare number. The TOML
// decoder reports that without naming the key, so look it up to say which.
func (n *Node) checkDurationTypes(data []byte) error {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return nil
	}
	for _, f := range n.durations() {
		table, key, _ := strings.Cut(f.field, ".")
		t, _ := doc[table].(map[string]any)
		if v, ok := t[key]; ok {
			if _, isString := v.(string); !isString {
				return fieldErr(f.field, "%v is not a duration string (write e.g. \"15s\" or \"2m\")", v)
			}
		}
	}
	return nil
}

// Marshal encodes n as a config file, with a comment on each setting.
func (n *Node) Marshal() ([]byte, error) {
	b, err := toml.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode node config: %w", err)
	}
	return b, nil
}

// Path resolves p against Home: absolute paths and paths of a Node without
// Home are returned as they are.
func (n *Node) Path(p string) string {
	if p == "" || filepath.IsAbs(p) || n.Home == "" {
		return p
	}
	return filepath.Join(n.Home, p)
}

// FederationPath is the federation file's resolved path.
func (n *Node) FederationPath() string { return n.Path(n.Federation) }

// KeyPath is the node key file's resolved path.
func (n *Node) KeyPath() string { return n.Path(n.Key) }

// AccessPath is the access file's path (AccessFile in the home).
func (n *Node) AccessPath() string { return n.Path(AccessFile) }

// APITokenPath is the API token file's resolved path.
func (n *Node) APITokenPath() string { return n.Path(n.APIToken) }

// DataDir is the data directory's resolved path.
func (n *Node) DataDir() string { return n.Path(n.Data) }

// LoadKey loads the node's private key.
func (n *Node) LoadKey() (crypto.PrivKey, error) { return LoadKey(n.KeyPath()) }

// LoadToken loads the API bearer token.
func (n *Node) LoadToken() (string, error) { return LoadToken(n.APITokenPath()) }

// LoadFederation loads the federation file and returns it as this node
// recognises it: restricted to Trust when Trust is set. It fails if the
// node's jurisdiction or a trusted code is not in the file. Use the package
// function LoadFederation for the whole file.
func (n *Node) LoadFederation() (*Federation, error) {
	path := n.FederationPath()
	if err := n.opts.check("federation file", path); err != nil {
		return nil, err
	}
	f, err := LoadFederation(path)
	if err != nil {
		return nil, err
	}
	if _, ok := f.Jurisdiction(n.Jurisdiction); !ok {
		return nil, fmt.Errorf("jurisdiction: %s is not in federation %q (%s has %s)",
			n.Jurisdiction, f.Name, path, strings.Join(f.Codes(), ", "))
	}
	r, err := f.Restrict(n.Trust)
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return r, nil
}

// ListenAddrs returns Listen parsed.
func (n *Node) ListenAddrs() ([]ma.Multiaddr, error) { return parseAddrs("listen", n.Listen) }

// AnnounceAddrs returns Announce parsed (nil when unset).
func (n *Node) AnnounceAddrs() ([]ma.Multiaddr, error) { return parseAddrs("announce", n.Announce) }

// APILoopback reports whether the API listens on a loopback address only.
func (n *Node) APILoopback() bool {
	host, _, err := net.SplitHostPort(n.API.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SlogLevel returns Level as a slog.Level (info if unset or unknown).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Handler returns a slog handler writing to w in Format at Level.
func (l Log) Handler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: l.SlogLevel()}
	if l.Format == LogJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func parseAddrs(field string, addrs []string) ([]ma.Multiaddr, error) {
	if len(addrs) == 0 {
		return nil, nil
	}
	out := make([]ma.Multiaddr, len(addrs))
	for i, s := range addrs {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Err: fmt.Errorf("not a multiaddr: %w", err)}
		}
		out[i] = m
	}
	return out, nil
}

func validateListenAddrs(field string, addrs []string) error {
	parsed, err := parseAddrs(field, addrs)
	if err != nil {
		return err
	}
	for i, m := range parsed {
		if _, err := m.ValueForProtocol(ma.P_P2P); err == nil {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%s: leave out the /p2p part, the node key gives it", addrs[i])
		}
	}
	return nil
}

// validateHostPort accepts host:port where host is empty (every interface),
// an IP address or a DNS name, and port is 0 to 65535 (0: any free port).
func validateHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host != "" && !validHost(host) {
		return fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	return nil
}

// validHost reports whether host is an IP address or a DNS host name.
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateHostName checks an entry of api.hosts: a name or IP address
// without a port, or "*".
func validateHostName(h string) error {
	if h == "*" || validHost(h) {
		return nil
	}
	return errors.New(`want a host name or IP address without a port, or "*"`)
}

// validateOrigin checks an entry of api.cors_origins: a web origin as
// browsers send it (scheme://host[:port], no path), or "*".
func validateOrigin(o string) error {
	if o == "*" {
		return nil
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return errors.New(`want http://host[:port] or https://host[:port], or "*"`)
	}
	host := rest
	if h, port, err := net.SplitHostPort(rest); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
		host = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	if !validHost(host) {
		return fmt.Errorf("%q is neither an IP address nor a host name (an origin has no path)", rest)
	}
	return nil
}
