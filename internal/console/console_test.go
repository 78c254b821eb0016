package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, mux http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// The console is served under /console/ with a policy that lets the page
// load only its own files and call only its own origin.
func TestConsoleServesEmbeddedFiles(t *testing.T) {
	mux := http.NewServeMux()
	Mount(mux)
	rec := get(t, mux, http.MethodGet, "/console/")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `<script type="module" src="app.js">`) {
		t.Fatalf("GET /console/: %d %.200s", rec.Code, rec.Body.String())
	}
	h := rec.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-cache" {
		t.Errorf("headers %v", h)
	}
	rec = get(t, mux, http.MethodGet, "/console/app.js")
	if ct := rec.Header().Get("Content-Type"); rec.Code != http.StatusOK || !strings.Contains(ct, "javascript") {
		t.Errorf("app.js: %d %q (a module needs a JavaScript type)", rec.Code, ct)
	}
	if rec := get(t, mux, http.MethodGet, "/console"); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/console/" {
		t.Errorf("GET /console: %d to %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := get(t, mux, http.MethodPost, "/console/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /console/: %d", rec.Code)
	}
	if rec := get(t, mux, http.MethodGet, "/console/nothing.js"); rec.Code != http.StatusNotFound {
		t.Errorf("a missing file: %d", rec.Code)
	}
}

// Every module the page imports is embedded, and nothing names another
// host: the page works with no network.
func TestConsoleAssetsAreSelfContained(t *testing.T) {
	sub, _ := fs.Sub(assets, "assets")
	imports := regexp.MustCompile(`from '\./([^']+)'`)
	urls := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	names, _ := fs.Glob(sub, "*")
	if len(names) < 5 {
		t.Fatalf("assets: %v", names)
	}
	for _, name := range names {
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range imports.FindAllStringSubmatch(text, -1) {
			if _, err := fs.Stat(sub, m[1]); err != nil {
				t.Errorf("%s imports %s, which is not embedded", name, m[1])
			}
		}
		for _, u := range urls.FindAllString(text, -1) {
			if u != "http://www.w3.org" { // the SVG namespace, never fetched
				t.Errorf("%s names %s: the console must fetch nothing from elsewhere", name, u)
			}
		}
	}
}
