// Package httpapi serves a node over HTTP:
//
//	PUT    /kv/{key}   body = value; 201 created, 204 overwritten
//	GET    /kv/{key}   200 with the value, 404 if absent
//	DELETE /kv/{key}   204 deleted, 404 if absent
//	GET    /metrics    Prometheus exposition
//	GET    /healthz    200 "ok" while serving, 503 while starting or stopping
//	POST   /admin/gc   runs runtime.GC(), answers node.Stats as JSON; needs
//	                   "Authorization: Bearer <admin token>" (401 without it,
//	                   403 when the node has no admin token)
//
// Errors are JSON {"error": "..."}: 400 for a bad key or value, 413 for a body
// over the limit (a declared Content-Length over it is refused before any of
// the body is read), 503 when the node's in-flight byte budget is spent, 405
// for a wrong method, 404 for unknown paths.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
)

// DefaultMaxBodyBytes limits a PUT body (1 MiB): the node's value limit.
const DefaultMaxBodyBytes = node.DefaultMaxValueBytes

// Options configure the handler.
type Options struct {
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Ready reports whether /healthz answers ok; nil means always ready.
	Ready *atomic.Bool
	// MaxBodyBytes limits PUT bodies (default: the node's MaxValueBytes).
	MaxBodyBytes int64
}

type api struct {
	n       *node.Node
	m       *metrics.Metrics
	ready   *atomic.Bool
	maxBody int64
}

// Handler returns the HTTP API of n.
func Handler(n *node.Node, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = n.Limits().MaxValueBytes
	}
	a := &api{n: n, m: n.Metrics(), ready: opts.Ready, maxBody: opts.MaxBodyBytes}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /kv/{key}", a.put)
	mux.HandleFunc("GET /kv/{key}", a.get)
	mux.HandleFunc("DELETE /kv/{key}", a.delete)
	mux.HandleFunc("/kv/{$}", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusBadRequest, node.ValidateKey(""))
	})
	mux.HandleFunc("GET /healthz", a.healthz)
	mux.HandleFunc("POST /admin/gc", a.gc)
	if opts.Gatherer != nil {
		// Uncompressed: a gzip writer is several hundred KiB of heap per scrape, and scrapes stay
		// inside the run's network. QuietDuring keeps scrapes out of exact heap samples.
		mux.Handle("GET /metrics", n.QuietDuring(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			DisableCompression: true,
		})))
	}
	return jsonErrors(mux)
}

// key returns the {key} path value, copied so the store does not keep the
// request's URL alive (gRPC keys are fresh strings too).
func key(r *http.Request) (string, error) {
	k := r.PathValue("key")
	if err := node.ValidateKey(k); err != nil {
		return "", err
	}
	return strings.Clone(k), nil
}

func (a *api) put(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	k, err := key(r)
	if err != nil {
		a.fail(w, metrics.OpPut, start, http.StatusBadRequest, err)
		return
	}
	if r.ContentLength > a.maxBody {
		// Refuse before reading: a client declaring 1e12 bytes and sending 10
		// must not hold a handler until the read deadline.
		a.fail(w, metrics.OpPut, start, http.StatusRequestEntityTooLarge,
			fmt.Errorf("body exceeds %d bytes", a.maxBody))
		return
	}
	// Reserve the body's bytes (the limit when the length is not declared)
	// in the node's in-flight budget before reading any of it.
	weight := r.ContentLength
	if weight < 0 {
		weight = a.maxBody
	}
	release, err := a.n.Acquire(weight)
	if err != nil {
		w.Header().Set("Retry-After", "1")
		a.fail(w, metrics.OpPut, start, http.StatusServiceUnavailable, err)
		return
	}
	defer release()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		if tooBig := new(http.MaxBytesError); errors.As(err, &tooBig) {
			a.fail(w, metrics.OpPut, start, http.StatusRequestEntityTooLarge,
				fmt.Errorf("body exceeds %d bytes", tooBig.Limit))
			return
		}
		a.fail(w, metrics.OpPut, start, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
		return
	}
	created, err := a.n.Put(k, body)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, node.ErrValueTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		a.fail(w, metrics.OpPut, start, code, err)
		return
	}
	if created {
		w.WriteHeader(http.StatusCreated)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	a.m.Observe(metrics.OpPut, metrics.HTTP, metrics.OK, time.Since(start))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	k, err := key(r)
	if err != nil {
		a.fail(w, metrics.OpGet, start, http.StatusBadRequest, err)
		return
	}
	v, ok := a.n.Get(k)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("key %q not found", k))
		a.m.Observe(metrics.OpGet, metrics.HTTP, metrics.Miss, time.Since(start))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(v)
	a.m.Observe(metrics.OpGet, metrics.HTTP, metrics.OK, time.Since(start))
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	k, err := key(r)
	if err != nil {
		a.fail(w, metrics.OpDelete, start, http.StatusBadRequest, err)
		return
	}
	if !a.n.Delete(k) {
		writeError(w, http.StatusNotFound, fmt.Errorf("key %q not found", k))
		a.m.Observe(metrics.OpDelete, metrics.HTTP, metrics.Miss, time.Since(start))
		return
	}
	w.WriteHeader(http.StatusNoContent)
	a.m.Observe(metrics.OpDelete, metrics.HTTP, metrics.OK, time.Since(start))
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if a.ready != nil && !a.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not serving\n")
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}

func (a *api) gc(w http.ResponseWriter, r *http.Request) {
	if err := a.n.CheckAdmin(r.Header.Get("Authorization")); err != nil {
		code := http.StatusUnauthorized
		if errors.Is(err, node.ErrAdminDisabled) {
			code = http.StatusForbidden
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="maptarget admin"`)
		}
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, a.n.Stats(true))
}

func (a *api) fail(w http.ResponseWriter, op metrics.Op, start time.Time, code int, err error) {
	writeError(w, code, err)
	a.m.Observe(op, metrics.HTTP, metrics.Error, time.Since(start))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// jsonErrors turns the mux's own plain-text 404 and 405 answers into JSON.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			// No pattern: let the mux compute the status (404 or 405 with
			// Allow), but replace its text body.
			rec := &statusOnly{ResponseWriter: w}
			mux.ServeHTTP(rec, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// statusOnly forwards headers and status but swaps the body for JSON.
type statusOnly struct {
	http.ResponseWriter
	wrote bool
}

func (s *statusOnly) WriteHeader(code int) {
	if s.wrote {
		return
	}
	s.wrote = true
	h := s.ResponseWriter.Header()
	h.Del("X-Content-Type-Options")
	h.Set("Content-Type", "application/json")
	s.ResponseWriter.WriteHeader(code)
	msg := strings.ToLower(http.StatusText(code))
	if code == http.StatusMethodNotAllowed {
		msg = fmt.Sprintf("method not allowed; allowed: %s", h.Get("Allow"))
	}
	_ = json.NewEncoder(s.ResponseWriter).Encode(map[string]string{"error": msg})
}

func (s *statusOnly) Write(b []byte) (int, error) {
	if !s.wrote {
		s.WriteHeader(http.StatusOK)
	}
	return len(b), nil // drop the mux's text body
}
