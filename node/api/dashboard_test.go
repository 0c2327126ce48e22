package api_test

import (
	"strings"
	"testing"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/api/dashboard"
)

// TestDashboardRoutes: GET / is the dashboard's page and /ui/ its files,
// public, with the dashboard's policy; behind the same guard as the rest
// of the API (a foreign Host is 421); a file it does not have, and any
// other method, are the API's JSON not_found.
func TestDashboardRoutes(t *testing.T) {
	base, _ := guardedServer(t, api.Guard{})
	for _, p := range []string{"/", "/ui/app.css", "/ui/js/main.js"} {
		resp, body := get(t, "GET", base+p, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != dashboard.ContentSecurityPolicy || body == "" {
			t.Errorf("GET %s: %d, policy %q, %d bytes", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), len(body))
		}
	}
	if resp, body := get(t, "GET", base+"/", "", nil); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="/ui/js/main.js"`) {
		t.Errorf("GET /: %s %.80s", resp.Header.Get("Content-Type"), body)
	}
	if resp, body := get(t, "HEAD", base+"/", "", nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD /: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, "GET", base+"/", "evil.example", nil); resp.StatusCode != 421 || !strings.Contains(body, `"misdirected_request"`) {
		t.Errorf("GET / for another Host: %d %s", resp.StatusCode, body)
	}
	for _, r := range []struct{ method, path string }{{"GET", "/ui/nothing.js"}, {"GET", "/ui/js/nothing.js"}, {"GET", "/ui/"}, {"GET", "/index.html"}} {
		resp, body := get(t, r.method, base+r.path, "", nil)
		if resp.StatusCode != 404 || !strings.Contains(body, `"error":"not_found"`) {
			t.Errorf("%s %s: %d %s, want the API's not_found", r.method, r.path, resp.StatusCode, body)
		}
	}
}
