package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// guarded answers the operator's token, a controller's ("ctl") and the
// public.
type guarded struct{}

func (guarded) Resolve(t string) (service.Identity, error) {
	switch t {
	case "ctl":
		return service.Identity{Name: "platform", Caller: protocol.Caller{Role: protocol.RoleController}}, nil
	}
	return access{}.Resolve(t)
}

// guardedServer serves an API with guard g on a real listener (the
// connection bounds are the listener's), and its metrics.
func guardedServer(t *testing.T, g api.Guard) (base string, reg *prometheus.Registry) {
	t.Helper()
	reg = prometheus.NewRegistry()
	a, err := api.New(api.Config{
		Access: guarded{}, Blocks: blocks{}, Records: records{}, Store: nodetest.Store(t), Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: reg, Registerer: reg, Guard: g,
		Limits: api.Limits{MaxConcurrentRequests: 64, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	return "http://" + a.Addr(), reg
}

// get makes one request with a fresh connection, Host and headers as
// given; its answer must match the API's description.
func get(t *testing.T, method, url, host string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	hc := &http.Client{Transport: checked(t, &http.Transport{DisableKeepAlives: true}, false)}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestHostCheck: the API answers localhost, the address a request came
// to and the names of Hosts; any other Host is 421 misdirected_request
// (DNS rebinding), on public routes too.
func TestHostCheck(t *testing.T) {
	base, _ := guardedServer(t, api.Guard{Hosts: []string{"node.example"}})
	port := base[strings.LastIndex(base, ":")+1:]
	for host, want := range map[string]int{
		"":                        200, // the URL's: 127.0.0.1:port
		"localhost:" + port:       200,
		"LocalHost":               200,
		"node.example":            200,
		"NODE.example.:" + port:   200,
		"evil.example":            421,
		"node.example.evil.com":   421,
		"127.0.0.2:" + port:       421,
		"[::1]:" + port:           421, // not the address this request came to
		"localhost.evil.example":  421,
		"node.example@evil.other": 421,
	} {
		resp, body := get(t, "GET", base+"/v1/status", host, nil)
		if resp.StatusCode != want {
			t.Errorf("Host %q: %d %s, want %d", host, resp.StatusCode, body, want)
		}
		if want == 421 && !strings.Contains(body, `"misdirected_request"`) {
			t.Errorf("Host %q: body %s", host, body)
		}
	}
	any, _ := guardedServer(t, api.Guard{Hosts: []string{"*"}})
	if resp, body := get(t, "GET", any+"/healthz", "evil.example", nil); resp.StatusCode != 200 {
		t.Errorf(`hosts = ["*"]: %d %s`, resp.StatusCode, body)
	}
}

// TestCORS: CORS headers only for the listed origins; their preflights
// are answered, others' refused.
func TestCORS(t *testing.T) {
	base, _ := guardedServer(t, api.Guard{CORSOrigins: []string{"https://dash.example"}})
	resp, _ := get(t, "GET", base+"/v1/status", "", map[string]string{"Origin": "https://dash.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://dash.example" || !strings.Contains(resp.Header.Get("Vary"), "Origin") {
		t.Errorf("listed origin: Allow-Origin %q, Vary %q", got, resp.Header.Get("Vary"))
	}
	resp, _ = get(t, "GET", base+"/v1/status", "", map[string]string{"Origin": "https://evil.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" || resp.StatusCode != 200 {
		t.Errorf("other origin: %d, Allow-Origin %q", resp.StatusCode, got)
	}
	pre := map[string]string{"Origin": "https://dash.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	resp, _ = get(t, "OPTIONS", base+"/v1/transfers/verify", "", pre)
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight of a listed origin: %d %v", resp.StatusCode, resp.Header)
	}
	pre["Origin"] = "https://evil.example"
	resp, body := get(t, "OPTIONS", base+"/v1/transfers/verify", "", pre)
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(body, "cors_origins") {
		t.Errorf("preflight of another origin: %d %s %v", resp.StatusCode, body, resp.Header)
	}
	none, _ := guardedServer(t, api.Guard{})
	resp, _ = get(t, "GET", none+"/v1/status", "", map[string]string{"Origin": "https://dash.example"})
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no origins configured: Allow-Origin %q", got)
	}
}

// TestRateLimits: a caller over its burst gets 429 rate_limited with
// Retry-After; another caller, the public of another key and the
// operator are not affected.
func TestRateLimits(t *testing.T) {
	base, reg := guardedServer(t, api.Guard{Rate: 0.5, Burst: 3, PublicRate: 1})
	status := func(auth string) (int, string) {
		h := map[string]string{}
		if auth != "" {
			h["Authorization"] = "Bearer " + auth
		}
		resp, body := get(t, "GET", base+"/v1/status", "", h)
		return resp.StatusCode, resp.Header.Get("Retry-After") + " " + body
	}
	for i := range 3 {
		if code, body := status("ctl"); code != 200 {
			t.Fatalf("controller request %d within its burst: %d %s", i, code, body)
		}
	}
	code, body := status("ctl")
	if code != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Fatalf("controller over its burst: %d %s", code, body)
	}
	if secs, err := strconv.Atoi(strings.Fields(body)[0]); err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After %q: want 1–2 s at 0.5 requests/s", strings.Fields(body)[0])
	}
	// The public (this address) has its own bucket: burst 2 at 1/s.
	for i := range 2 {
		if code, body := status(""); code != 200 {
			t.Fatalf("public request %d: %d %s", i, code, body)
		}
	}
	if code, _ := status(""); code != 429 {
		t.Errorf("public over its burst: %d", code)
	}
	for i := range 20 {
		if code, body := status(token); code != 200 {
			t.Fatalf("operator request %d: %d %s", i, code, body)
		}
	}
	if got := nodetest.Metric(t, reg, "entente_api_rate_limited_total", map[string]string{"caller": "token"}); got != 1 {
		t.Errorf("rate_limited{caller=token} = %v, want 1", got)
	}
}

// TestConnectionBounds: a client holding idle connections up to its
// bound gets its next one closed at once, while another client address
// is still answered; closing one gives its place back.
func TestConnectionBounds(t *testing.T) {
	base, reg := guardedServer(t, api.Guard{MaxConnections: 8, MaxConnectionsPerClient: 4})
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// Four idle connections that made one request each (so the server
	// has accepted them).
	for range 4 {
		c := dialAndAsk(t, addr)
		held = append(held, c)
	}
	// The fifth from the same address is closed without an answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 64)); err == nil {
		t.Errorf("a connection past the per-client bound was answered (%d bytes)", n)
	}
	c.Close()
	// Another address (127.0.0.2 is loopback too on Linux) is answered.
	if d, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).Dial("tcp", addr); err == nil {
		fmt.Fprintf(d, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		d.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(d).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Errorf("another client address: %q, %v", line, err)
		}
		d.Close()
	}
	// Closing one of the four lets this address in again.
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err == nil && strings.Contains(line, "200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a freed place was not given back: %q, %v", line, err)
		}
	}
	if got := nodetest.Metric(t, reg, "entente_api_connections_refused_total", map[string]string{"bound": "per_client"}); got < 1 {
		t.Errorf("connections_refused{bound=per_client} = %v", got)
	}
}

// dialAndAsk opens a connection, makes one request on it and leaves it
// open, idle.
func dialAndAsk(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("idle connection's request: %q, %v", line, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), r)), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	c.SetReadDeadline(time.Time{})
	return c
}

// TestListPagesBoundedInBytes: a page ends at MaxPageBytes (after the
// record that crosses it) with its next, and following the pages gives
// every record once, in order.
func TestListPagesBoundedInBytes(t *testing.T) {
	st := nodetest.Store(t)
	key, _ := nodetest.Key(t)
	var want []string
	for i := range 200 {
		rec := nodetest.Consent(t, key, fmt.Sprintf("purpose-%d", i))
		nodetest.Put(t, st, rec)
		want = append(want, rec.CID().String())
	}
	const maxBytes = 16 << 10
	a, err := api.New(api.Config{
		Access: guarded{}, Blocks: blocks{}, Records: records{}, Store: st, Verifier: verifier{}, Checkpoints: checkpoints{},
		Status: nodeStatus, Ready: func() (bool, string) { return true, "" },
		Peers: func() int { return 0 }, Metrics: prometheus.NewRegistry(),
		Limits: api.Limits{MaxConcurrentRequests: 4, MaxStreams: 4, MaxBatch: 2, MaxBatchBytes: 1 << 16, MaxPageBytes: maxBytes,
			ReadHeaderTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, IdleTimeout: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(a.Handler())
	defer s.Close()
	var got []string
	pages := 0
	for after := ""; ; pages++ {
		path := "/v1/records?limit=1000"
		if after != "" {
			path += "&after=" + after
		}
		resp, body := get(t, "GET", s.URL+path, "", map[string]string{"Authorization": "Bearer " + token})
		var page api.ListPage
		if err := json.Unmarshal([]byte(body), &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v: %.200s", pages, resp.StatusCode, err, body)
		}
		if len(body) > maxBytes+4<<10 {
			t.Errorf("page %d: %d bytes, over the bound %d by more than one record", pages, len(body), maxBytes)
		}
		for _, v := range page.Records {
			got = append(got, v.CID)
		}
		if page.Next == "" {
			break
		}
		if len(page.Records) == 0 || pages > 200 {
			t.Fatalf("page %d: %d records, next %q: no progress", pages, len(page.Records), page.Next)
		}
		after = page.Next
	}
	if pages < 3 {
		t.Errorf("200 records in %d pages of at most %d bytes", pages+1, maxBytes)
	}
	if !slices.Equal(got, want) {
		t.Errorf("the pages gave %d records, want the %d stored, in order", len(got), len(want))
	}
}
