// Command sessions is a session cache over HTTP, the user-style service that
// mapquake's verdict matrix (bench/verdict_matrix.py) judges: a
// map[string]*session instrumented the way a team would do it, and seeded
// regressions a gate must catch. Flags select each case:
//
//	--keep            keep every session (a cache that legitimately grows);
//	                  default: sessions expire --ttl after their last write
//	--gc-handler      mount mapprobe's exact-heap GC handler at /debug/mapprobe/gc
//	                  (default off: the typical service has none)
//	--maps 4          every key also lives in last_seen, versions and key_index
//	--bug NAME        a seeded regression (also --leak-outside, --never-expire,
//	                  --pin, --goroutine-leak):
//	  leak-outside    a global slice keeps a copy of every request body
//	  never-expire    expiry is disabled: the map grows past its entries bound
//	  pin             each session's token is a sub-slice of its request's 4 KiB buffer
//	  goroutine-leak  every write starts a goroutine that never exits
//
// The API:
//
//	PUT /sessions/{key}   body "user=NAME\ntoken=TOKEN\nattrs=..." -> 204
//	GET /sessions/{key}   -> 200 "user=NAME\nhits=N\n", 404
//	GET /healthz          200 "ok" (503 while stopping)
//	GET /metrics          Prometheus text
//
// It listens where --http says (mapquake assigns each replica an address
// inside its network namespace) and serves until SIGTERM.
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
	"slices"
	"strings"
	"syscall"
	"time"
)

// bugs are the seeded regressions, by their --bug name.
var bugs = []string{"none", "leak-outside", "never-expire", "pin", "goroutine-leak"}

type config struct {
	httpAddr  string
	keep      bool
	ttl       time.Duration
	gcHandler bool
	maps      int
	bug       string
	shutdown  time.Duration
}

// parseFlags reads the command line; errors name the flag and what is allowed.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sessions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8080", "`ADDR` (host:port) serving the API, /metrics and /healthz")
	fs.BoolVar(&c.keep, "keep", false, "keep every session (a growing cache); default: sessions expire")
	fs.DurationVar(&c.ttl, "ttl", 5*time.Second, "how long a session lives after its last write (without --keep)")
	fs.BoolVar(&c.gcHandler, "gc-handler", false, "mount mapprobe's exact-heap GC handler at "+gcPath)
	fs.IntVar(&c.maps, "maps", 1, "maps each key lives in: 1 (sessions) or 4 (also last_seen, versions, key_index)")
	fs.StringVar(&c.bug, "bug", "none", "a seeded regression: "+strings.Join(bugs, ", "))
	for _, name := range bugs[1:] {
		fs.BoolFunc(name, "the same as --bug "+name, func(v string) error {
			if v != "true" {
				return fmt.Errorf("--%s takes no value", name)
			}
			c.bug = name
			return nil
		})
	}
	fs.DurationVar(&c.shutdown, "shutdown-timeout", 5*time.Second, "bound on the graceful shutdown")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, _, err := net.SplitHostPort(c.httpAddr); err != nil {
		return c, fmt.Errorf("--http %q: want host:port: %v", c.httpAddr, err)
	}
	switch {
	case c.maps != 1 && c.maps != 4:
		return c, fmt.Errorf("--maps %d: must be 1 or 4", c.maps)
	case c.ttl <= 0:
		return c, fmt.Errorf("--ttl %s: must be positive", c.ttl)
	case !slices.Contains(bugs, c.bug):
		return c, fmt.Errorf("--bug %q: must be one of %s", c.bug, strings.Join(bugs, ", "))
	case c.shutdown <= 0:
		return c, fmt.Errorf("--shutdown-timeout %s: must be positive", c.shutdown)
	}
	return c, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	s, err := newService(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second, // an exact heap sample of a large heap takes a while
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() { defer close(swept); s.sweep(sweepCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("serving", "http_addr", ln.Addr().String(), "keep", cfg.keep, "ttl", cfg.ttl.String(),
		"gc_handler", cfg.gcHandler, "maps", cfg.maps, "bug", cfg.bug, "pid", os.Getpid())

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case serveErr = <-served:
	}
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdown)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	stopSweep()
	<-swept
	s.close()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info("stopped")
	return nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
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
