package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/entente-net/entente/node/api/dashboard"
)

// testRouter is the API's router, as Handler builds it.
func testRouter() *router {
	a := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ui, err := dashboard.New(dashboard.Config{NotFound: http.HandlerFunc(a.handleNotFound)})
	if err != nil {
		panic(err)
	}
	a.ui = ui
	return a.router()
}

// TestRouterAnswers: a path served for other methods is 405
// method_not_allowed with Allow; an unknown path is 404 not_found.
func TestRouterAnswers(t *testing.T) {
	rt := testRouter()
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/v1/status", 405, "GET, HEAD"},
		{"DELETE", "/v1/records/bafyx", 405, "GET, HEAD"},
		{"PUT", "/v1/records", 405, "GET, HEAD, POST"},
		{"GET", "/v1/transfers/verify", 405, "POST"},
		{"OPTIONS", "/healthz", 405, "GET, HEAD"},
		{"GET", "/v1/nothing", 404, ""},
		{"POST", "/v1/nothing", 404, ""},
		{"POST", "/", 405, "GET, HEAD"},
		{"GET", "/ui/no-such-file.js", 404, ""},
	} {
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow || w.Header().Get("Content-Type") != MediaJSON {
			t.Errorf("%s %s: %d, Allow %q, %s; want %d, Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Body, tc.status, tc.allow)
		}
		want := CodeNotFound
		if tc.status == 405 {
			want = CodeMethodNotAllowed
		}
		if !strings.Contains(w.Body.String(), `"error":"`+want+`"`) {
			t.Errorf("%s %s: %s, want code %s", tc.method, tc.path, w.Body, want)
		}
	}
}
