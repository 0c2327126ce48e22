package config

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// ids holds the identities the federation fixtures refer to.
type ids struct {
	authDE, authFR, authBR peer.ID
	nodeDE, nodeFR         peer.ID
	secp                   peer.ID // a valid peer ID of a non-Ed25519 key
	hashed                 peer.ID // a peer ID that does not embed its key
}

func newEd25519ID(t testing.TB) peer.ID {
	t.Helper()
	sk, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func newIDs(t testing.TB) ids {
	t.Helper()
	_, secpPub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secp, err := peer.IDFromPublicKey(secpPub)
	if err != nil {
		t.Fatal(err)
	}
	mh, err := multihash.Sum([]byte("some long key"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return ids{
		authDE: newEd25519ID(t), authFR: newEd25519ID(t), authBR: newEd25519ID(t),
		nodeDE: newEd25519ID(t), nodeFR: newEd25519ID(t),
		secp: secp, hashed: peer.ID(mh),
	}
}

// expand replaces {AUTH_DE}-style placeholders with the fixture's IDs.
func (x ids) expand(s string) string {
	return strings.NewReplacer(
		"{AUTH_DE}", x.authDE.String(),
		"{AUTH_FR}", x.authFR.String(),
		"{AUTH_BR}", x.authBR.String(),
		"{NODE_DE}", x.nodeDE.String(),
		"{NODE_FR}", x.nodeFR.String(),
		"{SECP}", x.secp.String(),
		"{HASHED}", x.hashed.String(),
		"{CID_AUTH_DE}", peer.ToCid(x.authDE).String(),
	).Replace(s)
}

const validFederationTOML = `
name = "eu-latam-pilot"

[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = [
  "/ip4/127.0.0.1/tcp/4101/p2p/{NODE_DE}",
  "/ip4/127.0.0.1/udp/4101/quic-v1/p2p/{NODE_DE}",
]

[[jurisdiction]]
code = "FR"
name = "France"
authority = "{AUTH_FR}"
bootstrap = ["/dns4/node.cnil.example/tcp/4101/p2p/{NODE_FR}"]

[[jurisdiction]]
code = "BR"
name = "Brazil"
authority = "{AUTH_BR}"
`

func TestParseFederationValid(t *testing.T) {
	x := newIDs(t)
	f, err := ParseFederation([]byte(x.expand(validFederationTOML)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Name != "eu-latam-pilot" || !slices.Equal(f.Codes(), []string{"DE", "FR", "BR"}) {
		t.Fatalf("got name %q codes %v", f.Name, f.Codes())
	}
	if j, ok := f.Jurisdiction("FR"); !ok || j.Name != "France" {
		t.Errorf("Jurisdiction(FR) = %v, %v", j, ok)
	}
	if _, ok := f.Jurisdiction("US"); ok {
		t.Error("Jurisdiction(US) found")
	}
	wantAuth := map[string]peer.ID{"DE": x.authDE, "FR": x.authFR, "BR": x.authBR}
	if got := f.Authorities(); !reflect.DeepEqual(got, wantAuth) {
		t.Errorf("Authorities() = %v, want %v", got, wantAuth)
	}
	wantFounders := map[peer.ID]string{x.nodeDE: "DE", x.nodeFR: "FR"}
	if got := f.FoundingNodes(); !reflect.DeepEqual(got, wantFounders) {
		t.Errorf("FoundingNodes() = %v, want %v", got, wantFounders)
	}
	infos := f.BootstrapAddrs()
	if len(infos) != 2 || infos[0].ID != x.nodeDE || infos[1].ID != x.nodeFR {
		t.Fatalf("BootstrapAddrs() = %v", infos)
	}
	if len(infos[0].Addrs) != 2 || infos[0].Addrs[1].String() != "/ip4/127.0.0.1/udp/4101/quic-v1" {
		t.Errorf("BootstrapAddrs()[0].Addrs = %v, want the two transports of the DE node", infos[0].Addrs)
	}
}

func TestFederationMarshalRoundTrip(t *testing.T) {
	x := newIDs(t)
	f, err := ParseFederation([]byte(x.expand(validFederationTOML)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParseFederation(b)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(f, g) {
		t.Errorf("round trip changed the federation:\n%+v\n%+v", f, g)
	}
}

func TestRestrict(t *testing.T) {
	x := newIDs(t)
	f, err := ParseFederation([]byte(x.expand(validFederationTOML)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := f.Restrict([]string{"BR", "DE"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Codes(), []string{"DE", "BR"}) || r.Name != f.Name {
		t.Errorf("Restrict(BR, DE) = %s %v", r.Name, r.Codes())
	}
	if _, ok := r.FoundingNodes()[x.nodeFR]; ok {
		t.Error("restricted federation still admits the FR founding node")
	}
	r.Jurisdictions[0].Bootstrap[0] = "changed"
	if f.Jurisdictions[0].Bootstrap[0] == "changed" {
		t.Error("Restrict shares the bootstrap slice with the original")
	}

	all, err := f.Restrict(nil)
	if err != nil || len(all.Jurisdictions) != 3 {
		t.Errorf("Restrict(nil) = %v, %v; want all three", all, err)
	}

	_, err = f.Restrict([]string{"DE", "US", "JP"})
	if err == nil || !strings.Contains(err.Error(), "US, JP") {
		t.Errorf("Restrict(unknown) error = %v, want it to name US, JP", err)
	}
}

func TestParseFederationInvalid(t *testing.T) {
	x := newIDs(t)
	const de = `
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/{NODE_DE}"]
`
	tests := []struct {
		name string
		toml string
		want string // the error must contain this
	}{
		{"syntax", `name = "x`, "line 1"},
		{"unknown top key", `name = "x"` + "\nversion = 2\n" + de, `unknown key "version"`},
		{"unknown jurisdiction key", `name = "x"` + de + "\nregion = \"EU\"\n", `unknown key "jurisdiction.region"`},
		{"key in wrong case", `Name = "x"` + de, `unknown key "Name" (keys are case-sensitive: write "name")`},
		{"table in wrong case", `name = "x"
[[Jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"`, `unknown key "Jurisdiction"`},
		{"nested key in wrong case", `name = "x"` + de + "\n[[jurisdiction]]\ncode = \"FR\"\nname = \"France\"\nAuthority = \"{AUTH_FR}\"\n", `unknown key "jurisdiction[1].Authority"`},
		{"wrong type", `name = 7` + de, "line 1"},
		{"missing name", de, "name: missing"},
		{"name with space", `name = "EU pilot"` + de, "name: "},
		{"name with slash", `name = "eu/pilot"` + de, "name: "},
		{"name too long", `name = "` + strings.Repeat("a", 65) + `"` + de, "name: longer than 64"},
		{"no jurisdiction", `name = "x"`, "jurisdiction: at least one"},
		{"lower-case code", `name = "x"
[[jurisdiction]]
code = "de"
name = "Germany"
authority = "{AUTH_DE}"`, "jurisdiction[0].code:"},
		{"three-letter code", `name = "x"` + de + `
[[jurisdiction]]
code = "FRA"
name = "France"
authority = "{AUTH_FR}"`, "jurisdiction[1].code:"},
		{"duplicate code", `name = "x"` + de + `
[[jurisdiction]]
code = "DE"
name = "Germany again"
authority = "{AUTH_FR}"`, "jurisdiction[1].code: DE is already used by jurisdiction[0]"},
		{"missing display name", `name = "x"
[[jurisdiction]]
code = "DE"
authority = "{AUTH_DE}"`, "jurisdiction[0].name: missing"},
		{"missing authority", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"`, "jurisdiction[0].authority: missing"},
		{"garbage authority", `name = "x"` + de + `
[[jurisdiction]]
code = "FR"
name = "France"
authority = "12D3KooWnotapeer"`, "jurisdiction[1].authority: not a peer ID"},
		{"authority as CID", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{CID_AUTH_DE}"`, "jurisdiction[0].authority: peer ID"},
		{"authority not Ed25519", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{SECP}"`, "jurisdiction[0].authority: peer ID"},
		{"authority without key", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{HASHED}"`, "jurisdiction[0].authority: peer ID"},
		{"bootstrap not a multiaddr", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["127.0.0.1:4101"]`, "jurisdiction[0].bootstrap[0]: not a multiaddr"},
		{"bootstrap without p2p", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/{NODE_DE}", "/ip4/127.0.0.1/tcp/4102"]`, "jurisdiction[0].bootstrap[1]: "},
		{"bootstrap without transport", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["/p2p/{NODE_DE}"]`, "jurisdiction[0].bootstrap[0]: "},
		{"bootstrap not Ed25519", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/{SECP}"]`, "jurisdiction[0].bootstrap[0]: "},
		{"bootstrap duplicate", `name = "x"
[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "{AUTH_DE}"
bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/{NODE_DE}", "/ip4/127.0.0.1/tcp/4101/p2p/{NODE_DE}"]`, "jurisdiction[0].bootstrap[1]: duplicate"},
		{"founding node of two jurisdictions", `name = "x"` + de + `
[[jurisdiction]]
code = "FR"
name = "France"
authority = "{AUTH_FR}"
bootstrap = ["/ip4/127.0.0.2/tcp/4101/p2p/{NODE_DE}"]`, "jurisdiction[1].bootstrap[0]: peer " + x.nodeDE.String() + " is already a founding node of jurisdiction[0] (DE)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFederation([]byte(x.expand(tt.toml)))
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadFederation(t *testing.T) {
	x := newIDs(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "federation.toml")
	bad := strings.Replace(x.expand(validFederationTOML), x.authFR.String(), "nope", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadFederation(path)
	want := path + ": jurisdiction[1].authority: not a peer ID"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error = %v, want prefix %q", err, want)
	}

	_, err = LoadFederation(filepath.Join(dir, "missing.toml"))
	if err == nil || !strings.Contains(err.Error(), "missing.toml") {
		t.Errorf("missing file: error = %v", err)
	}
}

// TestFederationDigest: the digest names the federation, not the file's
// layout: comments and spacing leave it, any field changes it.
func TestFederationDigest(t *testing.T) {
	x := newIDs(t)
	text := x.expand(validFederationTOML)
	digest := func(s string) string {
		t.Helper()
		f, err := ParseFederation([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := digest(text)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d) {
		t.Fatalf("digest %q", d)
	}
	relaid := "# the pilot's federation\n\n" + strings.ReplaceAll(text, " = ", "   =   ")
	if got := digest(relaid); got != d {
		t.Errorf("a comment and spacing changed the digest: %s, was %s", got, d)
	}
	for name, edit := range map[string]string{
		"name":      strings.Replace(text, `"eu-latam-pilot"`, `"eu-latam-pilot2"`, 1),
		"authority": strings.Replace(text, x.authBR.String(), x.authFR.String(), 1),
		"address":   strings.Replace(text, "4101", "4102", 1),
	} {
		if edit == text {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if got := digest(edit); got == d {
			t.Errorf("another %s, the same digest %s", name, got)
		}
	}
}
