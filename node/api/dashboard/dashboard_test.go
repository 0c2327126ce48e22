package dashboard

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func newHandler(t *testing.T) *Handler {
	t.Helper()
	h, err := New(Config{NotFound: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
	})})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(h http.Handler, p string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, p, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHeaders: the page and each of its files come with their media type,
// the security headers and an ETag that revalidates to 304; a path under
// the prefix that names no file is the router's not_found.
func TestHeaders(t *testing.T) {
	h := newHandler(t)
	files := h.Files()
	if len(files) < 4 {
		t.Fatalf("serves %v: want the page, its style, its scripts and its icon", files)
	}
	for _, p := range files {
		w := get(h, p)
		if w.Code != http.StatusOK {
			t.Errorf("GET %s: %d", p, w.Code)
			continue
		}
		want := map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "no-cache",
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s is %q, want %q", p, k, got, v)
			}
		}
		ext := path.Ext(p)
		if p == "/" {
			ext = ".html"
		}
		if got := w.Header().Get("Content-Type"); got != contentTypes[ext] {
			t.Errorf("GET %s: Content-Type %q, want %q", p, got, contentTypes[ext])
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Errorf("GET %s: no ETag", p)
		} else if w := get(h, p, "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", p, w.Code)
		}
	}
	for _, p := range []string{"/ui/", "/ui/nothing.js", "/ui/js/", "/ui/../index.html", "/index.html"} {
		if w := get(h, p); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "not_found") {
			t.Errorf("GET %s: %d %q, want the router's not_found", p, w.Code, w.Body.String())
		}
	}
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("the policy lacks %s", want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("the policy allows something unsafe: %s", ContentSecurityPolicy)
	}
}

// TestFilesAreSelfContained holds the embedded files to the policy and to
// working offline: no inline script, style or event handler in the page;
// nothing referenced from another origin; every file the page or a script
// names is embedded; no script writes HTML from a string or evaluates one.
func TestFilesAreSelfContained(t *testing.T) {
	root, _ := fs.Sub(static, "static")
	served := map[string]bool{}
	for _, p := range newHandler(t).Files() {
		served[p] = true
	}
	var (
		inlineScript = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
		scriptTag    = regexp.MustCompile(`<script\b[^>]*>`)
		handlerAttr  = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
		styleAttr    = regexp.MustCompile(`(?i)<style\b|\sstyle\s*=`)
		refs         = regexp.MustCompile(`(?:src|href)="([^"#]+)"`)
		external     = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/|url\(|@import`)
		imports      = regexp.MustCompile(`(?m)^import\s.*from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)`)
		sinks        = regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setTimeout\(\s*['"]`)
	)
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		if err != nil {
			return err
		}
		s := string(b)
		switch path.Ext(p) {
		case ".html":
			if inlineScript.MatchString(s) {
				t.Errorf("%s: an inline script", p)
			}
			for _, tag := range scriptTag.FindAllString(s, -1) {
				if !strings.Contains(tag, `src="/ui/`) {
					t.Errorf("%s: a script not from /ui/: %s", p, tag)
				}
			}
			if handlerAttr.MatchString(s) || styleAttr.MatchString(s) {
				t.Errorf("%s: an inline event handler or style", p)
			}
			for _, m := range refs.FindAllStringSubmatch(s, -1) {
				if !served[m[1]] {
					t.Errorf("%s names %s, which is not served", p, m[1])
				}
			}
		case ".js":
			for _, m := range imports.FindAllStringSubmatch(s, -1) {
				ref := m[1] + m[2]
				target := path.Join("/ui", path.Dir(p), ref)
				if strings.HasPrefix(ref, "/") {
					target = ref
				}
				if !served[target] {
					t.Errorf("%s imports %s (%s), which is not served", p, ref, target)
				}
			}
			if m := sinks.FindString(s); m != "" {
				t.Errorf("%s: %s (build the DOM node by node)", p, m)
			}
		}
		if m := external.FindString(s); m != "" && path.Ext(p) != ".svg" {
			t.Errorf("%s: %q names another origin (the page must work offline)", p, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
