package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
)

// apiClient talks to a node's HTTP API.
type apiClient struct {
	base  string // http://host:port
	home  string // the node home base came from, if it did
	token string
	http  *http.Client
}

// unreachable is err, from a request no node answered, with what to do.
func (c *apiClient) unreachable(err error) error {
	if c.home != "" {
		return withHint(err, "is the node running? Start it with 'entente run --home "+c.home+"'")
	}
	return withHint(err, "is a node's API listening at "+c.base+"? Check --api (a node prints its API address as it starts)")
}

// apiFlags are the flags that say which node to talk to.
type apiFlags struct {
	api, home, tokenFile string
}

func (f *apiFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.api, "api", "", "the node's API address, host:port or URL (default: from --home)")
	fs.StringVar(&f.home, "home", "", "a node home to read the API address and token from (default $ENTENTE_HOME)")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API token (default: $ENTENTE_API_TOKEN, or the home's api-token)")
}

// client resolves the flags into a client. A token is sent when one is
// found (what a caller may read depends on it); needToken makes its
// absence an error.
func (f *apiFlags) client(env *cliEnv, needToken bool) (*apiClient, error) {
	c := &apiClient{http: &http.Client{Timeout: 60 * time.Second}}
	home := env.homeDir(f.home)
	var nc *config.Node
	if home != "" {
		var err error
		if nc, err = config.Load(home); err != nil {
			return nil, err
		}
	}
	switch {
	case f.api != "":
		c.base = f.api
	case nc != nil:
		c.base, c.home = nc.API.Listen, home
		// A running node writes the address it actually listens on (the
		// configured one may have port 0).
		if b, err := os.ReadFile(nc.Path(config.APIAddressFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
			c.base = string(bytes.TrimSpace(b))
		}
	default:
		return nil, withHint(errors.New("no node to talk to"), "give --api HOST:PORT, or --home DIR of a node (or set ENTENTE_HOME)")
	}
	if !strings.Contains(c.base, "://") {
		c.base = "http://" + dialable(c.base)
	}
	c.base = strings.TrimRight(c.base, "/")
	switch {
	case f.tokenFile != "":
		t, err := config.LoadToken(f.tokenFile)
		if err != nil {
			return nil, err
		}
		c.token = t
	case env.getenv("ENTENTE_API_TOKEN") != "":
		c.token = env.getenv("ENTENTE_API_TOKEN")
	case nc != nil:
		t, err := nc.LoadToken()
		if err != nil && needToken {
			return nil, err
		}
		c.token = t
	case needToken:
		return nil, withHint(errors.New("no API token"), "give --token-file FILE, or --home DIR of the node (or set ENTENTE_API_TOKEN)")
	}
	return c, nil
}

// dialable is the API address host:port, with an unspecified host (a node
// listening on every interface: 0.0.0.0, ::, or none) replaced by the
// loopback address of its family. Dialling 0.0.0.0 reaches loopback, but
// the API refuses a Host it does not answer to (421), and "0.0.0.0" is
// none of its names (docs/operating.md, "The HTTP API").
func dialable(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if host == "" {
		return net.JoinHostPort("127.0.0.1", port)
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err != nil || !ip.IsUnspecified():
		return hostport
	case ip.Is4():
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort("::1", port)
}

// apiError is an error answer of the API.
type apiError struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("not found on the node (%d %s): %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("the node refused it (%d %s): %s", e.Status, e.Code, e.Message)
}

func (c *apiClient) do(method, path, contentType, accept string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 400 {
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return resp, data, ae
	}
	return resp, data, nil
}

// stream is a GET whose answer may be long: the body is the caller's to
// read and close (on a 2xx answer), and no timeout bounds it but ctx.
func (c *apiClient) stream(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := (&http.Client{Transport: c.http.Transport}).Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return nil, ae
	}
	return resp, nil
}

func (c *apiClient) getJSON(path string, v any) error {
	_, data, err := c.do(http.MethodGet, path, "", "application/json", nil)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func peerIDOf(k crypto.PrivKey) (peer.ID, error) { return peer.IDFromPrivateKey(k) }

func readFileOrStdin(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	}
	return os.ReadFile(path)
}
