// Package dashboard is the node's web dashboard (DESIGN.md §8, GET /): a
// page of plain HTML, CSS and JavaScript embedded in the binary, with no
// build step and nothing fetched from elsewhere, so that it works offline.
//
// The page is a public shell. It holds no data of its own: it calls the
// node's API from the same origin with the access token the user types in,
// kept in the tab's sessionStorage and sent as "Authorization: Bearer" on
// each call (never a cookie), so the page sees exactly what the token's
// caller may see. Its files are served with a strict Content-Security-Policy
// (scripts and styles from this origin only, no inline code, no framing,
// DOM sinks closed by Trusted Types) and revalidated on each load by their
// content hash.
//
// Paths: "/" is the page; its files are under [AssetPrefix] ("/ui/").
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// AssetPrefix is the path under which the page's files are served.
const AssetPrefix = "/ui/"

// ContentSecurityPolicy is the policy of every answer of the dashboard:
// everything from this origin only, no inline script or style, no plugins,
// no <base>, no form posted anywhere (the page's forms call the API with
// fetch), not framed by anyone, and no string reaching a DOM sink that
// parses HTML (Trusted Types with no policy: the page builds its DOM node
// by node).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// contentTypes are the media types of the files the dashboard has: an
// embedded file of another extension makes New fail.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// file is one embedded file, ready to serve.
type file struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// Config configures the handler.
type Config struct {
	// NotFound answers a path under AssetPrefix that names no file (the
	// API's JSON not_found). Required.
	NotFound http.Handler
}

// Handler serves the dashboard.
type Handler struct {
	notFound http.Handler
	index    *file
	assets   map[string]*file // by path under AssetPrefix
}

// New builds the handler from the embedded files.
func New(cfg Config) (*Handler, error) {
	if cfg.NotFound == nil {
		return nil, fmt.Errorf("dashboard: Config.NotFound is required")
	}
	h := &Handler{notFound: cfg.NotFound, assets: map[string]*file{}}
	root, _ := fs.Sub(static, "static")
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard: %s: no content type for its extension", p)
		}
		body, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		f := &file{name: p, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`, body: body}
		if p == "index.html" {
			h.index = f
		} else {
			h.assets[p] = f
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.index == nil {
		return nil, fmt.Errorf("dashboard: no index.html embedded")
	}
	return h, nil
}

// Files lists the paths the handler serves: "/" and the assets.
func (h *Handler) Files() []string {
	out := []string{"/"}
	for p := range h.assets {
		out = append(out, AssetPrefix+p)
	}
	return out
}

// ServeHTTP serves "/" (the page) and the files under AssetPrefix; the
// router gives it GET and HEAD requests of those paths only.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := h.index
	if r.URL.Path != "/" {
		f = h.assets[strings.TrimPrefix(r.URL.Path, AssetPrefix)]
		if f == nil || !strings.HasPrefix(r.URL.Path, AssetPrefix) {
			h.notFound.ServeHTTP(w, r)
			return
		}
	}
	hd := w.Header()
	securityHeaders(hd)
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	// Revalidated on every load (a 304 when unchanged), so that a node
	// upgraded never serves an old script to a new page.
	hd.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}

// securityHeaders sets the headers every answer of the dashboard carries.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}
