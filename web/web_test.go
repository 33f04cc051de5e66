package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func testFiles() fstest.MapFS {
	return fstest.MapFS{
		"index.html":            {Data: []byte("<!doctype html><title>aTES</title><div id=root></div>")},
		"assets/index-Ab12.js":  {Data: []byte(strings.Repeat("console.log('aTES');\n", 100))},
		"assets/index-Cd34.css": {Data: []byte("body{margin:0}")},
		"favicon.svg":           {Data: []byte("<svg xmlns='http://www.w3.org/2000/svg'/>")},
	}
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// R-WEB-1: client-side routes fall back to the app; the gateway's own paths never do.
func TestClientRoutesFallBackToIndex(t *testing.T) {
	t.Parallel()
	h := NewHandler(testFiles())
	for _, p := range []string{"/", "/tasks", "/accounting/accounts/123", "/graphiql", "/analytics?from=2026-01-01"} {
		w := get(t, h, http.MethodGet, p)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "<div id=root>") {
			t.Errorf("GET %s = %d %q, want the app's index.html", p, w.Code, w.Body.String())
		}
		if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("GET %s Content-Type = %q", p, got)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s Cache-Control = %q, want no-cache", p, got)
		}
		if got := w.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("GET %s Content-Security-Policy = %q", p, got)
		}
	}
	for _, p := range []string{"/graphql", "/metrics", "/healthz", "/readyz", "/.well-known/jwks.json", "/missing.js", "/assets/gone-1234.js"} {
		if w := get(t, h, http.MethodGet, p); w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
	}
	if w := get(t, h, http.MethodPost, "/tasks"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /tasks = %d, want 405", w.Code)
	}
}

// Hashed assets are cached for good, with their content type; other files are revalidated.
func TestAssetHeaders(t *testing.T) {
	t.Parallel()
	h := NewHandler(testFiles())
	cases := []struct{ path, ctype, cache string }{
		{"/assets/index-Ab12.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/assets/index-Cd34.css", "text/css; charset=utf-8", "public, max-age=31536000, immutable"},
		{"/favicon.svg", "image/svg+xml", "no-cache"},
	}
	for _, c := range cases {
		w := get(t, h, http.MethodGet, c.path)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d", c.path, w.Code)
		}
		if got := w.Header().Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s Content-Type = %q, want %q", c.path, got, c.ctype)
		}
		if got := w.Header().Get("Cache-Control"); got != c.cache {
			t.Errorf("GET %s Cache-Control = %q, want %q", c.path, got, c.cache)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s without nosniff", c.path)
		}
		if w.Header().Get("Content-Security-Policy") != "" {
			t.Errorf("GET %s carries a page's CSP", c.path)
		}
	}
}

// Compressible files go gzipped to clients that accept it, and revalidate by ETag.
func TestGzipAndETag(t *testing.T) {
	t.Parallel()
	h := NewHandler(testFiles())
	w := get(t, h, http.MethodGet, "/assets/index-Ab12.js", "Accept-Encoding", "br, gzip")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip for a client that accepts it: %v", w.Header())
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if string(plain) != string(testFiles()["assets/index-Ab12.js"].Data) {
		t.Fatal("gzipped body differs from the file")
	}
	if w := get(t, h, http.MethodGet, "/assets/index-Ab12.js", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip sent to a client that refused it")
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := get(t, h, http.MethodGet, "/assets/index-Ab12.js", "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match = %d with %d bytes, want 304 and none", w.Code, w.Body.Len())
	}
	if w := get(t, h, http.MethodHead, "/"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD / = %d with %d bytes", w.Code, w.Body.Len())
	}
}

// The embedded build holds the app: index.html naming its script, and that script.
func TestEmbeddedBuild(t *testing.T) {
	t.Parallel()
	h := Handler()
	w := get(t, h, http.MethodGet, "/")
	if w.Code != http.StatusOK {
		t.Fatalf("GET / = %d", w.Code)
	}
	body := w.Body.String()
	i := strings.Index(body, `src="/assets/`)
	if i < 0 {
		t.Fatalf("index.html names no script under /assets/:\n%s", body)
	}
	src := body[i+len(`src="`):]
	src = src[:strings.IndexByte(src, '"')]
	if w := get(t, h, http.MethodGet, src); w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET %s = %d %q", src, w.Code, w.Header().Get("Content-Type"))
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("index.html names another origin (R-WEB-1):\n%s", body)
	}
}
