package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxBodyBytes bounds a PUT or replicated body: a valid one is under 150 bytes.
const maxBodyBytes = 1 << 10

// itemBody is the JSON of PUT /items/{sku} and POST /replicate/items/{sku}.
type itemBody struct {
	Name       string `json:"name"`
	Qty        int64  `json:"qty"`
	PriceCents int64  `json:"price_cents"`
}

// itemResponse is the JSON of GET /items/{sku}.
type itemResponse struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int64  `json:"qty"`
	PriceCents int64  `json:"price_cents"`
	// UpdatedUnixNano is when this replica last wrote the item.
	UpdatedUnixNano int64 `json:"updated_unix_nano"`
}

// routes builds the HTTP API. Unknown paths and wrong methods get JSON errors
// too (404, 405 with Allow).
func (s *service) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /items/{sku}", s.putItem)
	mux.HandleFunc("GET /items/{sku}", s.getItem)
	mux.HandleFunc("DELETE /items/{sku}", s.deleteItem)
	mux.HandleFunc("POST /replicate/items/{sku}", s.replicateItem)
	mux.HandleFunc("GET /healthz", s.healthz)
	// Uncompressed (a gzip writer is hundreds of KiB per scrape) and quiet
	// while mapprobe takes an exact heap sample.
	mux.Handle("GET /metrics", s.gc.Quiet(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{DisableCompression: true})))
	if s.cfg.adminGC != "" {
		if err := handle(mux, s.cfg.adminGC, s.gc); err != nil {
			return nil, fmt.Errorf("--admin-gc %q: %w", s.cfg.adminGC, err)
		}
	}
	return jsonErrors(mux), nil
}

// handle registers h at the exact path p (any method: the GC handler
// answers 405 itself), turning the mux's panic on a clash into an error.
func handle(mux *http.ServeMux, p string, h http.Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	mux.Handle(p, h)
	return nil
}

// SKUBytes is the longest SKU, in bytes.
const SKUBytes = 32

// sku returns the {sku} path value: 1 to SKUBytes ASCII letters, digits,
// '-' or '_' (such as "sku-000123"). It is a substring of the request's
// URL: the store copies it before keeping it.
func sku(r *http.Request) (string, error) {
	v := r.PathValue("sku")
	if v == "" || len(v) > SKUBytes || strings.IndexFunc(v, notSKURune) >= 0 {
		return "", fmt.Errorf("sku %q: want 1 to %d ASCII letters, digits, '-' or '_' (such as sku-000123)", v, SKUBytes)
	}
	return v, nil
}

func notSKURune(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
}

// readItem decodes and checks a write's body. The status is 413 for a body
// over the limit, else 400.
func readItem(w http.ResponseWriter, r *http.Request) (Item, int, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Item{}, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", tooBig.Limit)
		}
		return Item{}, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Item{}, http.StatusBadRequest, errors.New(`body must be a JSON object {"name": string, "qty": int, "price_cents": int}`)
	}
	for _, f := range []string{"name", "qty", "price_cents"} {
		if _, ok := fields[f]; !ok {
			return Item{}, http.StatusBadRequest, fmt.Errorf("body has no %q", f)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var b itemBody
	if err := dec.Decode(&b); err != nil {
		return Item{}, http.StatusBadRequest, fmt.Errorf("body: %v", err)
	}
	switch {
	case b.Name == "":
		return Item{}, http.StatusBadRequest, errors.New("name is empty")
	case len(b.Name) > NameBytes:
		return Item{}, http.StatusBadRequest, fmt.Errorf("name is %d bytes, at most %d allowed", len(b.Name), NameBytes)
	case strings.ContainsRune(b.Name, 0) || !utf8.ValidString(b.Name):
		return Item{}, http.StatusBadRequest, errors.New("name must be UTF-8 without NUL")
	case b.Qty < 0:
		return Item{}, http.StatusBadRequest, fmt.Errorf("qty is %d, must be >= 0", b.Qty)
	case b.PriceCents < 0:
		return Item{}, http.StatusBadRequest, fmt.Errorf("price_cents is %d, must be >= 0", b.PriceCents)
	}
	// b.Name is a fresh string (encoding/json copies what it decodes), not a
	// view of the body: the item keeps only its own bytes.
	return Item{Name: b.Name, Qty: b.Qty, PriceCents: b.PriceCents}, 0, nil
}

func (s *service) putItem(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, "put", true)
}

func (s *service) replicateItem(w http.ResponseWriter, r *http.Request) {
	s.write(w, r, "replicate", false)
}

// write stores a client PUT (forwarded to every peer) or a peer's
// replicated write (never forwarded again).
func (s *service) write(w http.ResponseWriter, r *http.Request, op string, forward bool) {
	id, err := sku(r)
	if err != nil {
		s.fail(w, op, http.StatusBadRequest, err)
		return
	}
	it, code, err := readItem(w, r)
	if err != nil {
		s.fail(w, op, code, err)
		return
	}
	_, evicted := s.store.Put(id, it)
	if evicted > 0 {
		s.evictions.Add(float64(evicted))
	}
	if forward {
		for _, q := range s.peers {
			q.push(id, it)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	s.count(op, http.StatusNoContent)
}

func (s *service) getItem(w http.ResponseWriter, r *http.Request) {
	id, err := sku(r)
	if err != nil {
		s.fail(w, "get", http.StatusBadRequest, err)
		return
	}
	it, ok := s.store.Get(id)
	if !ok {
		s.fail(w, "get", http.StatusNotFound, fmt.Errorf("sku %q not found", id))
		return
	}
	writeJSON(w, http.StatusOK, itemResponse{SKU: id, Name: it.Name, Qty: it.Qty,
		PriceCents: it.PriceCents, UpdatedUnixNano: it.Updated})
	s.count("get", http.StatusOK)
}

// deleteItem removes an item on this replica only: deletes are not
// replicated (the peers' capacity eviction retires what they hold).
func (s *service) deleteItem(w http.ResponseWriter, r *http.Request) {
	id, err := sku(r)
	if err != nil {
		s.fail(w, "delete", http.StatusBadRequest, err)
		return
	}
	if !s.store.Delete(id) {
		s.fail(w, "delete", http.StatusNotFound, fmt.Errorf("sku %q not found", id))
		return
	}
	w.WriteHeader(http.StatusNoContent)
	s.count("delete", http.StatusNoContent)
}

func (s *service) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "stopping\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (s *service) fail(w http.ResponseWriter, op string, code int, err error) {
	writeError(w, code, err)
	s.count(op, code)
}

func (s *service) count(op string, code int) {
	s.requests.WithLabelValues(op, strconv.Itoa(code)).Inc()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// jsonErrors answers the mux's own 404 and 405 (which it writes as plain
// text) with JSON errors, keeping its status and Allow header.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&jsonStatus{ResponseWriter: w}, r)
	})
}

// jsonStatus keeps the status and headers the mux sets and replaces its
// text body with {"error": ...}.
type jsonStatus struct {
	http.ResponseWriter
	wrote bool
}

func (j *jsonStatus) WriteHeader(code int) {
	if j.wrote {
		return
	}
	j.wrote = true
	msg := strings.ToLower(http.StatusText(code))
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed; allowed: " + j.Header().Get("Allow")
	}
	j.Header().Del("X-Content-Type-Options")
	writeJSON(j.ResponseWriter, code, map[string]string{"error": msg})
}

func (j *jsonStatus) Write(b []byte) (int, error) {
	if !j.wrote {
		j.WriteHeader(http.StatusOK)
	}
	return len(b), nil // the mux's text body is dropped
}
