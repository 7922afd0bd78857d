// Command inventory is a small inventory cache over HTTP/JSON: an example of
// "your own service under test" for mapquake. It is not maptarget: it knows
// nothing of mapquake beyond importing mapprobe to describe its one map.
//
//	PUT    /items/{sku}             {"name": "...", "qty": 3, "price_cents": 1999} -> 204
//	GET    /items/{sku}             -> 200 JSON, 404
//	DELETE /items/{sku}             -> 204, 404
//	POST   /replicate/items/{sku}   a peer's write (same body) -> 204; not forwarded again
//	GET    /healthz                 200 "ok" (503 while stopping)
//	GET    /metrics                 Prometheus text
//	POST   <--admin-gc PATH>        mapprobe's exact-heap sample (only with --admin-gc)
//
// SKUs are short strings such as "sku-000123". Items live in a
// map[string]*Item (an Item holds its name as a string), the most common
// shape of a Go cache, registered with mapprobe as map="items": its entries,
// its high-water mark (Go maps never shrink) and, through WithEntries, what
// an entry owns beyond its slot (the Item, the name's and the SKU's bytes),
// which mapprobe measures on a sample of entries at each scrape. Every
// accepted PUT is queued for each peer (bounded, drop-oldest) and sent by
// one goroutine per peer. --leak plants a realistic bug: a change history
// that keeps every overwritten, evicted or deleted item forever.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mapquake/mapquake/mapprobe"
)

type config struct {
	httpAddr     string
	adminGC      string
	peers        []string
	capacity     int
	queue        int
	leak         bool
	peerTimeout  time.Duration
	shutdownWait time.Duration
}

// parseFlags reads the command line; errors name the flag and what is allowed.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var peers string
	fs := flag.NewFlagSet("inventory", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "`ADDR` (host:port) serving the API, /metrics and /healthz; port 0 picks one")
	fs.StringVar(&c.adminGC, "admin-gc", "", "mount mapprobe's exact-heap GC handler at `PATH` (POST) on the same listener, e.g. /debug/mapprobe/gc; empty: not mounted")
	fs.StringVar(&peers, "peers", "", "other replicas' `host:port,...` (their --http addresses); every accepted PUT is sent to each")
	fs.IntVar(&c.capacity, "capacity", 100000, "most items held; a new SKU beyond it evicts the oldest-updated 1/64 of them")
	fs.IntVar(&c.queue, "queue", 10000, "most writes queued per peer; beyond it the oldest queued write is dropped")
	fs.BoolVar(&c.leak, "leak", false, "keep every overwritten, evicted or deleted item in a change history that is never trimmed (a planted bug)")
	fs.DurationVar(&c.peerTimeout, "peer-timeout", time.Second, "timeout of one replication request")
	fs.DurationVar(&c.shutdownWait, "shutdown-timeout", 5*time.Second, "bound on the graceful shutdown")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, _, err := net.SplitHostPort(c.httpAddr); err != nil {
		return c, fmt.Errorf("--http %q: want host:port: %v", c.httpAddr, err)
	}
	if c.adminGC != "" && (!strings.HasPrefix(c.adminGC, "/") || strings.ContainsAny(c.adminGC, " \t{}")) {
		return c, fmt.Errorf("--admin-gc %q: want an absolute path such as /debug/mapprobe/gc (no spaces or braces)", c.adminGC)
	}
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if host, port, err := net.SplitHostPort(p); err != nil || host == "" || port == "" {
			return c, fmt.Errorf("--peers: %q is not host:port", p)
		}
		c.peers = append(c.peers, p)
	}
	switch {
	case c.capacity < 1:
		return c, fmt.Errorf("--capacity %d: must be at least 1", c.capacity)
	case c.queue < 1:
		return c, fmt.Errorf("--queue %d: must be at least 1", c.queue)
	case c.peerTimeout <= 0:
		return c, fmt.Errorf("--peer-timeout %s: must be positive", c.peerTimeout)
	case c.shutdownWait <= 0:
		return c, fmt.Errorf("--shutdown-timeout %s: must be positive", c.shutdownWait)
	}
	return c, nil
}

// service is one replica: its store, metrics, peer queues and HTTP API.
type service struct {
	cfg       config
	log       *slog.Logger
	store     *Store
	reg       *prometheus.Registry
	gc        *mapprobe.GCHandler
	peers     []*peerQueue
	client    *http.Client
	ready     atomic.Bool
	requests  *prometheus.CounterVec
	evictions prometheus.Counter
}

func newService(cfg config, log *slog.Logger) (*service, error) {
	s := &service{cfg: cfg, log: log, store: NewStore(cfg.capacity, cfg.leak), reg: prometheus.NewRegistry()}
	s.gc = mapprobe.NewGCHandler(s.reg)
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "inventory_requests_total",
		Help: "API requests by operation and HTTP status.",
	}, []string{"op", "code"})
	s.evictions = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "inventory_evictions_total",
		Help: "Items evicted because the store was at --capacity.",
	})
	collectorsToRegister := []prometheus.Collector{
		// go_gc_heap_live_bytes and the rest of the runtime's GC and memory metrics.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsGC, collectors.MetricsMemory)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.requests,
		s.evictions,
	}
	for _, c := range collectorsToRegister {
		if err := s.reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The items map: mapquake_store_entries{map="items"} and friends, with
	// mapquake_store_entry_owned_bytes{part="key"|"value"}: the mean bytes
	// an entry's SKU and *Item own, sampled by ranging over the map.
	err := mapprobe.Register[string, *Item](
		prometheus.WrapRegistererWith(prometheus.Labels{"map": "items"}, s.reg),
		s.store.Len, mapprobe.WithHighWater(s.store.HighWater), mapprobe.WithEntries(s.store.Entries))
	if err != nil {
		return nil, err
	}
	if len(cfg.peers) > 0 {
		m, err := newReplicationMetrics(s.reg)
		if err != nil {
			return nil, err
		}
		for _, p := range cfg.peers {
			s.peers = append(s.peers, newPeerQueue(p, cfg.queue, m))
		}
		s.client = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.peerTimeout, KeepAlive: 15 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1, // one sender per peer
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	s.ready.Store(true)
	return s, nil
}

// startReplication starts one sender per peer; they stop when ctx is done
// and the returned wait returns once they have.
func (s *service) startReplication(ctx context.Context) (wait func()) {
	var wg sync.WaitGroup
	for _, q := range s.peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.run(ctx, s.client, s.cfg.peerTimeout, s.log)
		}()
	}
	return wg.Wait
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	s, err := newService(cfg, log)
	if err != nil {
		return err
	}
	handler, err := s.routes()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // a GC sample of a large heap takes a while
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	replCtx, stopRepl := context.WithCancel(context.Background())
	waitRepl := s.startReplication(replCtx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "http_addr", ln.Addr().String(), "admin_gc", cfg.adminGC, "peers", cfg.peers,
		"capacity", cfg.capacity, "queue", cfg.queue, "leak", cfg.leak, "pid", os.Getpid())

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case serveErr = <-served:
	}
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancel()
	clean := true
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown", "err", err)
		clean = false
	}
	stopRepl()
	waitRepl()
	for _, q := range s.peers {
		if n := q.len(); n > 0 {
			log.Warn("writes not replicated", "peer", q.peer, "backlog", n)
		}
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped", "clean", clean)
	return nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "inventory:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("exiting", "err", err)
		stop()
		os.Exit(1)
	}
}
