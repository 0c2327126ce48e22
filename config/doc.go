// Package config reads, checks and writes the files an entente node lives
// by: the federation file, the node's config.toml, its key file and its API
// token. It is plain data and file handling; it imports no other package of
// entente, and node and cmd build on it.
//
// # The federation file
//
// The federation file names the federation and, for each member
// jurisdiction, its ISO 3166-1 alpha-2 code, a display name, the peer ID of
// its authority key, and the multiaddrs of its founding nodes. It is
// distributed out of band and is the root of trust:
//
//	name = "eu-latam-pilot"
//
//	[[jurisdiction]]
//	code = "DE"
//	name = "Germany"
//	authority = "12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8"
//	bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/12D3KooWLWTcnf3FDDPkCqaAuSm2p2sqFNBdBuqczXRFLJsXwBun"]
//
//	[[jurisdiction]]
//	code = "BR"
//	name = "Brazil"
//	authority = "12D3KooWSf9xAcwXRNcJgtctMcxKUQQw64sM3eQBpcqrV56c9aJW"
//	bootstrap = []
//
// LoadFederation decodes it strictly (an unknown key, or a key in the wrong
// case, is an error) and checks it:
//
//   - name is 1 to 64 characters of [a-z0-9._-]; it appears in checkpoint
//     origins (entente/<name>/<peer>) and topic names;
//   - there is at least one jurisdiction; codes are two upper-case letters
//     and unique; every jurisdiction has a display name;
//   - authority is the canonical string of an Ed25519 peer ID (12D3KooW...),
//     from which the public key is recovered;
//   - each bootstrap entry is a transport multiaddr ending in /p2p/<Ed25519
//     peer ID>, and no peer is a founding node of two jurisdictions.
//
// Every error names the file and the field, for example:
//
//	federation.toml: jurisdiction[1].authority: not a peer ID: ...
//
// # The node config
//
// entente init writes DIR/config.toml; entente run reads it with Load. A
// missing or zero setting takes the default shown; relative paths are
// relative to DIR:
//
//	federation = "/etc/entente/federation.toml"  # required
//	jurisdiction = "DE"                          # required
//	key = "node.key"
//	api_token = "api-token"
//	data = "data"
//	listen = ["/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"]
//	announce = []               # advertised instead of listen, if set
//	trust = []                  # jurisdictions recognised; empty: all
//
//	[api]
//	listen = "127.0.0.1:8101"   # host:port; loopback unless you mean it
//	hosts = []                  # names clients use in Host, besides localhost and the address; "*": any
//	cors_origins = []           # web origins whose pages may call the API; "*": any
//
//	[gossip]
//	sync_interval = "30s"       # reconcile records with each peer
//	checkpoint_interval = "10s" # sign a checkpoint of the log, when it grew
//	witness_interval = "10s"    # check and cosign each peer's checkpoint
//	reconnect_interval = "5s"   # dial members not connected
//	max_peer_connections = 512  # libp2p connections in all; ≥ 2 × the other member nodes
//	peer_connections_low = 160  # the connection manager trims non-members down to this
//	peer_connections_high = 192 # ... when past this; ≥ the other member nodes
//
//	[log]
//	level = "info"              # debug, info, warn, error
//	format = "text"             # text, json
//
//	[limits]
//	max_body_bytes = 1048576    # HTTP request body; at least 65536
//	max_batch = 1000            # requests in one verify-batch call (at most 1000)
//	max_concurrent_requests = 256
//	max_streams = 2048
//	max_pending_ingest = 4096   # records being ingested from the API at once
//	max_record_age = "10m"      # older decision times are answered unsigned
//	http_read_header_timeout = "5s"
//	http_read_timeout = "30s"
//	http_write_timeout = "60s"
//	http_idle_timeout = "30s"
//	max_connections = 4096      # open HTTP connections in all
//	max_connections_per_client = 256  # from one client address (an IPv6 /64)
//	rate = 1000.0               # requests/s of one caller with a token; the operator is not limited
//	burst = 2000                # requests a caller may make at once above its rate
//	public_rate = 50.0          # requests/s of one client address without a token
//
// Defaults is the one place these defaults are written: init writes them
// into the file, and a node built without a file (node.Config's zero
// fields, testnet, the demo) takes the same.
//
// Files of earlier versions set the API's address as api = "host:port";
// they still load, as [api] listen.
//
// Durations are Go duration strings. The record size limit, 64 KiB, belongs
// to the protocol and is not a setting. If trust is set it must include the
// node's own jurisdiction; Node.LoadFederation returns the federation
// restricted to it. Errors name the file and the field:
//
//	/home/op/.entente/config.toml: listen[0]: not a multiaddr: ...
//
// # Keys and the API token
//
// A key file holds the bytes of libp2p's crypto.MarshalPrivateKey for an
// Ed25519 key, mode 0600. The API token file holds 32 random bytes in hex
// and a newline, mode 0600. LoadKey and LoadToken refuse files that group or
// others may access, as ssh does. WriteKey and WriteToken never replace an
// existing file.
//
// All files are written atomically (WriteFileAtomic): a temporary file in
// the same directory, synced, renamed into place, and the directory synced.
package config
