// Package web serves the aTES web app (R-WEB-1): the single-page app built by Vite into dist/
// and embedded in the binary, so every gateway serves it with no other software and no CDN.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed all:dist
var dist embed.FS

// ContentSecurityPolicy is the policy every page of the app is served with: nothing but the
// page's own origin (R-WEB-1). Styles may be inline: Mantine and GraphiQL set style attributes
// and inject their CSS variables at run time; scripts may not.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; " +
	"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// reserved are the gateway's own paths: never answered with the app, even when unrouted.
var reserved = []string{"/graphql", "/metrics", "/healthz", "/readyz", "/.well-known/"}

// Handler serves the embedded app: files of dist/ as they are (hashed assets under /assets/
// cached for a year, everything else revalidated), and index.html for any client-side route
// (a path whose last segment has no extension).
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed directive guarantees the folder
	}
	return NewHandler(sub)
}

// NewHandler serves the app built into files (the contents of dist/).
func NewHandler(files fs.FS) http.Handler {
	return &handler{files: files}
}

type handler struct {
	files fs.FS
	cache sync.Map // path → *asset
}

// asset is one file with what its responses need, read once.
type asset struct {
	body, gz    []byte
	etag        string
	contentType string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := path.Clean("/" + r.URL.Path)
	for _, res := range reserved {
		if p == strings.TrimSuffix(res, "/") || strings.HasPrefix(p, res) {
			http.NotFound(w, r)
			return
		}
	}
	name := strings.TrimPrefix(p, "/")
	route := name == "" || path.Ext(name) == ""
	if route {
		name = "index.html"
	}
	a, ok := h.load(name)
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("ETag", a.etag)
	hd.Set("Vary", "Accept-Encoding")
	switch {
	case strings.HasPrefix(name, "assets/"):
		// Vite names every file under assets/ by its content's hash.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		hd.Set("Cache-Control", "no-cache")
	}
	if strings.HasPrefix(a.contentType, "text/html") {
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.body
	if a.gz != nil && acceptsGzip(r) {
		hd.Set("Content-Encoding", "gzip")
		body = a.gz
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// load reads a file of the app once and keeps it with its gzip form and validator.
func (h *handler) load(name string) (*asset, bool) {
	if v, ok := h.cache.Load(name); ok {
		return v.(*asset), true
	}
	b, err := fs.ReadFile(h.files, name)
	if err != nil {
		return nil, false
	}
	sum := sha256.Sum256(b)
	a := &asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: contentType(name)}
	if compressible(a.contentType) && len(b) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if buf.Len() < len(b) {
			a.gz = buf.Bytes()
		}
	}
	v, _ := h.cache.LoadOrStore(name, a)
	return v.(*asset), true
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json"
	case ".woff2":
		return "font/woff2"
	case ".txt":
		return "text/plain; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ct string) bool {
	return strings.HasPrefix(ct, "text/") || strings.HasPrefix(ct, "application/json") || ct == "image/svg+xml"
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}
