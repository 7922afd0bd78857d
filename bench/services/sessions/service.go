package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mapquake/mapquake/mapprobe"
)

const (
	gcPath = "/debug/mapprobe/gc"
	// bodyBuffer is each PUT's read buffer: a valid body is a few hundred bytes.
	bodyBuffer = 4 << 10
	maxField   = 64
	// Bounds on the seeded leaks, so a forgotten replica cannot take the machine.
	maxAudit  = 1 << 20
	maxLeaked = 1 << 18
)

// service is one replica: its store, metrics and HTTP API.
type service struct {
	cfg      config
	store    *Store
	reg      *prometheus.Registry
	gc       *mapprobe.GCHandler // nil without --gc-handler
	requests *prometheus.CounterVec
	ready    atomic.Bool

	// The seeded regressions' state.
	auditMu  sync.Mutex
	audit    [][]byte      // leak-outside: a copy of every request body, never trimmed
	leaked   atomic.Int64  // goroutine-leak: goroutines started and never ended
	stopping chan struct{} // closed at shutdown, so the leaked goroutines end with the process
	stopOnce sync.Once
}

func newService(cfg config) (*service, error) {
	s := &service{
		cfg:      cfg,
		store:    NewStore(cfg.maps, cfg.ttl, cfg.keep),
		reg:      prometheus.NewRegistry(),
		stopping: make(chan struct{}),
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessions_requests_total",
		Help: "API requests by operation and HTTP status.",
	}, []string{"op", "code"})
	expired := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sessions_expired_total",
		Help: "Sessions deleted because their time was up.",
	}, func() float64 { return float64(s.store.Expired()) })
	// Instrumented the usual way: client_golang's default Go collector (which
	// exports no go_gc_heap_live_bytes) and the process collector.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.requests,
		expired,
	} {
		if err := s.reg.Register(c); err != nil {
			return nil, err
		}
	}
	if err := s.registerMaps(); err != nil {
		return nil, err
	}
	if cfg.gcHandler {
		s.gc = mapprobe.NewGCHandler(s.reg)
	}
	s.ready.Store(true)
	return s, nil
}

// registerMaps describes each of the store's maps to mapprobe under its map
// label: its length and high-water mark, and for the sessions map its entries
// (which mapprobe samples to measure what each entry owns beyond its slot).
func (s *service) registerMaps() error {
	st := s.store
	wrap := func(name string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"map": name}, s.reg)
	}
	hw := mapprobe.WithHighWater(st.HighWater)
	if err := mapprobe.Register[string, *session](wrap("sessions"), st.Len, hw, mapprobe.WithEntries(st.eachSession)); err != nil {
		return err
	}
	if s.cfg.maps == 1 {
		return nil
	}
	// The other maps share the sessions map's key strings and own nothing else beyond their slots:
	// no WithEntries, or map: "*" would charge each key's bytes once per map (docs/your-service.md).
	if err := mapprobe.Register[string, int64](wrap("last_seen"), st.Len, hw); err != nil {
		return err
	}
	if err := mapprobe.Register[string, uint64](wrap("versions"), st.Len, hw); err != nil {
		return err
	}
	return mapprobe.Register[string, struct{}](wrap("key_index"), st.Len, hw)
}

func (s *service) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /sessions/{key}", s.put)
	mux.HandleFunc("GET /sessions/{key}", s.get)
	mux.HandleFunc("GET /healthz", s.healthz)
	metrics := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	if s.gc != nil {
		// Quiet keeps a scrape out of an exact heap sample being taken.
		mux.Handle("GET /metrics", s.gc.Quiet(metrics))
		mux.Handle(gcPath, s.gc)
	} else {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// sweep expires sessions every quarter of the TTL until ctx is done.
func (s *service) sweep(ctx context.Context) {
	if s.cfg.keep {
		return
	}
	tick := time.NewTicker(s.cfg.ttl / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if s.cfg.bug == "never-expire" {
				continue // the seeded regression: the sweep runs but never deletes
			}
			s.store.Expire()
		}
	}
}

// close ends the leaked goroutines (they must not outlive a test).
func (s *service) close() { s.stopOnce.Do(func() { close(s.stopping) }) }

// key is the {key} path value, copied: the path value is a substring of the
// request line, which a stored key would otherwise keep alive.
func key(r *http.Request) (string, error) {
	k := r.PathValue("key")
	if k == "" || len(k) > maxField {
		return "", fmt.Errorf("key: want 1 to %d characters, got %d", maxField, len(k))
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("key %q: only letters, digits, '-' and '_'", k)
		}
	}
	return strings.Clone(k), nil
}

// readBody reads a PUT body into a fresh 4 KiB buffer and returns the bytes read.
func readBody(r *http.Request) ([]byte, int, error) {
	buf := make([]byte, bodyBuffer)
	n, err := io.ReadFull(http.MaxBytesReader(nil, r.Body, bodyBuffer-1), buf)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", bodyBuffer-1)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %v", err)
	}
	return buf[:n], 0, nil
}

// parseSession reads "user=NAME\ntoken=TOKEN\nattrs=..." (attrs are checked
// for size only). user and token are sub-slices of body.
func parseSession(body []byte) (user, token []byte, err error) {
	for _, line := range bytes.Split(body, []byte("\n")) {
		name, value, _ := bytes.Cut(line, []byte("="))
		switch string(name) {
		case "user":
			user = value
		case "token":
			token = value
		case "attrs", "":
		default:
			return nil, nil, fmt.Errorf("unknown field %q (want user, token, attrs)", name)
		}
	}
	if len(user) == 0 || len(user) > maxField || len(token) == 0 || len(token) > maxField {
		return nil, nil, fmt.Errorf("user and token: each 1 to %d bytes", maxField)
	}
	return user, token, nil
}

func (s *service) put(w http.ResponseWriter, r *http.Request) {
	code, err := s.doPut(r)
	s.requests.WithLabelValues("put", strconv.Itoa(code)).Inc()
	if err != nil {
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(code)
}

func (s *service) doPut(r *http.Request) (int, error) {
	k, err := key(r)
	if err != nil {
		return http.StatusBadRequest, err
	}
	body, code, err := readBody(r)
	if err != nil {
		return code, err
	}
	user, token, err := parseSession(body)
	if err != nil {
		return http.StatusBadRequest, err
	}
	if s.cfg.bug == "pin" {
		// The seeded regression: the token stays a sub-slice of the request's
		// 4 KiB buffer (bytes.Split caps it at its line, so the slice looks
		// like 32 bytes), and keeps the whole buffer alive.
		s.store.Put(k, string(user), token)
	} else {
		s.store.Put(k, string(user), bytes.Clone(token))
	}
	switch s.cfg.bug {
	case "leak-outside":
		s.auditMu.Lock()
		if len(s.audit) < maxAudit {
			s.audit = append(s.audit, bytes.Clone(body)) // kept forever, outside any map
		}
		s.auditMu.Unlock()
	case "goroutine-leak":
		if s.leaked.Add(1) <= maxLeaked {
			// Waits for a notification nobody sends (until shutdown).
			go func() { <-s.stopping }()
		}
	}
	return http.StatusNoContent, nil
}

func (s *service) get(w http.ResponseWriter, r *http.Request) {
	k, err := key(r)
	if err != nil {
		s.requests.WithLabelValues("get", "400").Inc()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, ok := s.store.Get(k)
	if !ok {
		s.requests.WithLabelValues("get", "404").Inc()
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	s.requests.WithLabelValues("get", "200").Inc()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "user=%s\nhits=%d\n", v.User, v.Hits)
}

func (s *service) healthz(w http.ResponseWriter, _ *http.Request) {
	if !s.ready.Load() {
		http.Error(w, "stopping", http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ok\n")
}
