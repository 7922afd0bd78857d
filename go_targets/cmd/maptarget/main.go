// Command maptarget serves one key-value store over HTTP and gRPC, with
// Prometheus metrics, an exact-heap admin endpoint and optional replication
// of client writes to peers.
//
//	maptarget --store NAME --http-addr HOST:PORT --grpc-addr HOST:PORT
//	          [--value-type T] [--peers host:port,...] [--self host:port] [--peer-queue bounded|unbounded]
//	          [--peer-queue-capacity N] [--shards N] [--rebuild-every N]
//	          [--ring-size N] [--ring-leak] [--slice-buffer N] [--max-value-bytes N]
//	          [--max-request-bytes N] [--max-inflight-bytes N] [--http-read-timeout D]
//	          [--admin-token TOKEN] [--ready-file PATH] [--shutdown-timeout D]
//	          [--log-format json|text] [--log-level debug|info|warn|error] [--version]
//
// Addresses may use port 0; the "serving" log line and the ready file carry
// the bound addresses. The ready file is written (atomically) once both
// listeners serve, as {"http_addr": "127.0.0.1:41234", "grpc_addr":
// "127.0.0.1:40007", "pid": 1234}, and removed on a clean shutdown.
//
// POST /admin/gc, gRPC Stats(gc=true) and gRPC Replicate (from peers) need
// "authorization: Bearer TOKEN" (header or metadata), TOKEN being
// --admin-token or else $MAPTARGET_ADMIN_TOKEN, which is also what this
// target sends its peers; without a token they are refused.
//
// SIGTERM or SIGINT stops it gracefully: /healthz turns 503, the listeners
// stop accepting, in-flight requests finish, peer queues get one last flush,
// the store is closed; exit 0. Bad flags exit 2 with a one-line error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mapquake/mapquake/go_targets/internal/grpcapi"
	"github.com/mapquake/mapquake/go_targets/internal/httpapi"
	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
	"github.com/mapquake/mapquake/go_targets/internal/replicate"
	"github.com/mapquake/mapquake/go_targets/internal/store"
	"github.com/mapquake/mapquake/go_targets/internal/warmup"
)

const name = "maptarget"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	store, valueType     string
	httpAddr, grpcAddr   string
	peers                []string
	peerQueue            replicate.QueueKind
	peerQueueCapacity    int
	shards, rebuildEvery int
	ringSize             int
	ringLeak             bool
	sliceBuffer          int
	maxValueBytes        int
	maxRequestBytes      int
	maxInflightBytes     int
	readyFile            string
	shutdownTimeout      time.Duration
	httpReadTimeout      time.Duration
	adminToken           string
	logFormat, logLevel  string
	version              bool
}

// usageError is a bad command line: one line on stderr, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// intFlag is a non-negative int flag with a clear error message.
type intFlag struct{ p *int }

func (f intFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.Itoa(*f.p)
}

func (f intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return errors.New("want an integer ≥ 0")
	}
	*f.p = n
	return nil
}

func oneOf(flagName, value string, allowed []string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return usagef("--%s %q is not one of: %s", flagName, value, strings.Join(allowed, ", "))
}

func parseFlags(args []string, stdout io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.store, "store", "", "container pattern, one of: "+strings.Join(store.Names(), ", ")+" (required)")
	fs.StringVar(&c.valueType, "value-type", "[32]byte", "Go value type, one of: "+strings.Join(store.ValueTypes(), ", "))
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (port 0: any free port)")
	fs.StringVar(&c.grpcAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address (port 0: any free port)")
	peers := fs.String("peers", "", "comma-separated gRPC addresses of peers to replicate client writes to")
	self := fs.String("self", "", "this replica's own entry in --peers, left out of them (a StatefulSet's pods share one peer list)")
	queue := fs.String("peer-queue", "bounded", "per-peer queue: bounded (drops when full) or unbounded")
	c.peerQueueCapacity = 100000
	fs.Var(intFlag{&c.peerQueueCapacity}, "peer-queue-capacity", "ops a bounded peer queue holds (default 100000)")
	fs.Var(intFlag{&c.shards}, "shards", "shardedmap shard count (0: store default 32)")
	fs.Var(intFlag{&c.rebuildEvery}, "rebuild-every", "deleteretain: rebuild the map after this many deletes (0: never)")
	fs.Var(intFlag{&c.ringSize}, "ring-size", "ringbuffer per-key buffer length (0: store default 8)")
	fs.BoolVar(&c.ringLeak, "ring-leak", false, "ringbuffer: leak each deleted key's goroutine")
	fs.Var(intFlag{&c.sliceBuffer}, "slice-buffer", "subslice: keep each []byte value as a slice of a fresh buffer of this many bytes (0: copy it to size)")
	c.maxValueBytes = node.DefaultMaxValueBytes
	fs.Var(intFlag{&c.maxValueBytes}, "max-value-bytes", "largest value a write may carry, HTTP and gRPC alike (default 1048576)")
	fs.Var(intFlag{&c.maxValueBytes}, "max-body-bytes", "old name of --max-value-bytes")
	c.maxRequestBytes = node.DefaultMaxRequestBytes
	fs.Var(intFlag{&c.maxRequestBytes}, "max-request-bytes", "largest request: gRPC message or HTTP body (default 4194304)")
	c.maxInflightBytes = node.DefaultMaxInflightBytes
	fs.Var(intFlag{&c.maxInflightBytes}, "max-inflight-bytes", "request bytes all handlers may hold at once; more is refused with 503 / RESOURCE_EXHAUSTED (default 67108864)")
	fs.StringVar(&c.adminToken, "admin-token", "", "token POST /admin/gc, Stats(gc=true) and Replicate require, and replication sends peers (default $"+node.AdminTokenEnv+"; none: those are refused)")
	fs.StringVar(&c.readyFile, "ready-file", "", "write {http_addr, grpc_addr, pid} as JSON here once serving")
	fs.DurationVar(&c.httpReadTimeout, "http-read-timeout", DefaultHTTPReadTimeout,
		"how long an HTTP client may take to send one request, headers and body; slower clients are cut off")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 8*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&c.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s --store NAME [flags]\n\n", name)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return nil, err
		}
		// flag's messages name the flag and value; spell flags with "--".
		msg := strings.ReplaceAll(err.Error(), "flag -", "flag --")
		msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
		return nil, usageError{msg + " (see --help)"}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (all options are --flags)", fs.Arg(0))
	}
	if c.version {
		return c, nil
	}
	if c.store == "" {
		return nil, usagef("--store is required, one of: %s", strings.Join(store.Names(), ", "))
	}
	for _, check := range []error{
		oneOf("store", c.store, store.Names()),
		oneOf("value-type", c.valueType, store.ValueTypes()),
		oneOf("peer-queue", *queue, replicate.QueueKinds()),
		oneOf("log-format", c.logFormat, []string{"json", "text"}),
		oneOf("log-level", c.logLevel, []string{"debug", "info", "warn", "error"}),
		checkAddr("http-addr", c.httpAddr),
		checkAddr("grpc-addr", c.grpcAddr),
	} {
		if check != nil {
			return nil, check
		}
	}
	c.peerQueue, _ = replicate.ParseQueueKind(*queue)
	if c.peerQueue == replicate.Bounded && c.peerQueueCapacity == 0 {
		return nil, usagef("--peer-queue-capacity 0 is invalid for a bounded queue: want 1 or more")
	}
	if err := c.limits().Check(); err != nil {
		return nil, usagef("--max-value-bytes %d, --max-request-bytes %d, --max-inflight-bytes %d: %v",
			c.maxValueBytes, c.maxRequestBytes, c.maxInflightBytes, err)
	}
	if c.adminToken == "" {
		c.adminToken = os.Getenv(node.AdminTokenEnv)
	}
	if c.httpReadTimeout <= 0 {
		return nil, usagef("--http-read-timeout %v is invalid: want a positive duration such as 15s", c.httpReadTimeout)
	}
	if c.shutdownTimeout <= 0 {
		return nil, usagef("--shutdown-timeout %v is invalid: want a positive duration such as 8s", c.shutdownTimeout)
	}
	if *peers != "" {
		for _, p := range strings.Split(*peers, ",") { // not SplitSeq: builds with Go 1.23 too
			p = strings.TrimSpace(p)
			if err := checkAddr("peers", p); err != nil {
				return nil, err
			}
			if _, port, _ := net.SplitHostPort(p); port == "0" {
				return nil, usagef("--peers %q: a peer needs a real port, not 0", p)
			}
			if p == strings.TrimSpace(*self) {
				continue
			}
			c.peers = append(c.peers, p)
		}
	}
	return c, nil
}

func (c *config) limits() node.Limits {
	return node.Limits{
		MaxValueBytes:    int64(c.maxValueBytes),
		MaxRequestBytes:  int64(c.maxRequestBytes),
		MaxInflightBytes: int64(c.maxInflightBytes),
	}
}

func checkAddr(flagName, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("--%s %q is not HOST:PORT", flagName, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return usagef("--%s %q: port must be 0..65535", flagName, addr)
	}
	return nil
}

func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("%s %s (mapquake) %s %s/%s", name, v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func newLogger(c *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.logLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if c.version {
		fmt.Fprintln(stdout, version())
		return 0
	}
	log := newLogger(c, stderr).With("store", c.store)
	if err := serve(ctx, c, log); err != nil {
		log.Error("failed", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, c *config, log *slog.Logger) (err error) {
	st, err := store.New(c.store, store.Options{
		ValueType: c.valueType, Shards: c.shards, RebuildEvery: c.rebuildEvery,
		RingSize: c.ringSize, RingLeak: c.ringLeak, SliceBuffer: c.sliceBuffer,
	})
	if err != nil {
		return err
	}
	info := st.Info()
	reg := prometheus.NewRegistry()
	m, err := metrics.NewMetrics(reg, metrics.BuildInfo{
		GoVersion: runtime.Version(), Store: info.Store, KeyType: info.KeyType, ValueType: info.ValueType,
	})
	if err != nil {
		_ = st.Close()
		return err
	}
	if err := registerStore(reg, st); err != nil {
		_ = st.Close()
		return err
	}

	httpLis, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		_ = st.Close()
		return fmt.Errorf("--http-addr: %w", err)
	}
	grpcLis, err := net.Listen("tcp", c.grpcAddr)
	if err != nil {
		_ = httpLis.Close()
		_ = st.Close()
		return fmt.Errorf("--grpc-addr: %w", err)
	}
	httpAddr, grpcAddr := httpLis.Addr().String(), grpcLis.Addr().String()

	var repl *replicate.Replicator
	var nodeRepl node.Replicator
	if len(c.peers) > 0 {
		repl, err = replicate.New(replicate.Config{
			Origin: grpcAddr, Peers: c.peers, Queue: c.peerQueue, Capacity: c.peerQueueCapacity,
			MaxBatchBytes: c.limits().MaxReplicateBatchBytes(), AdminToken: c.adminToken,
			Metrics: m, Logger: log,
		})
		if err != nil {
			_ = httpLis.Close()
			_ = grpcLis.Close()
			_ = st.Close()
			return err
		}
		nodeRepl = repl
	}
	n := node.New(st, m, nodeRepl)
	n.SetLimits(c.limits())
	n.SetAdminToken(c.adminToken)

	ready := new(atomic.Bool)
	httpSrv := newHTTPServer(httpapi.Handler(n, httpapi.Options{Gatherer: reg, Ready: ready}), c.httpReadTimeout)
	httpSrv.ConnState = n.HTTPConns.HTTPConnState
	httpSrv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	// Peers replicating to this target send keepalive pings: accept them,
	// whether or not this target has peers of its own.
	grpcOpts := append([]grpc.ServerOption{grpc.StatsHandler(n.GRPCConns.GRPCHandler())},
		append(grpcapi.ServerOptions(n), replicate.ServerOptions()...)...)
	grpcSrv := grpc.NewServer(grpcOpts...)
	warmup.BuildLazyTables()
	grpcapi.Register(grpcSrv, n)
	healthSrv := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, healthSrv)

	serveErr := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := httpSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("http server: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := grpcSrv.Serve(grpcLis); err != nil {
			serveErr <- fmt.Errorf("grpc server: %w", err)
		}
	}()
	ready.Store(true)
	peerQueue := ""
	if len(c.peers) > 0 {
		peerQueue = c.peerQueue.String()
	}
	log.Info("serving", "http_addr", httpAddr, "grpc_addr", grpcAddr, "pid", os.Getpid(),
		"value_type", info.ValueType, "go_type", info.GoType, "go_version", runtime.Version(),
		"peers", append([]string{}, c.peers...), "peer_queue", peerQueue, "admin", c.adminToken != "")
	if c.readyFile != "" {
		if err := writeReadyFile(c.readyFile, httpAddr, grpcAddr); err != nil {
			log.Error("cannot write ready file", "path", c.readyFile, "err", err)
			serveErr <- err
		}
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx).Error())
	case runErr = <-serveErr:
		log.Error("shutting down after a server failed", "err", runErr)
	}

	// Graceful shutdown, bounded by --shutdown-timeout overall.
	ready.Store(false)
	healthSrv.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	var swg sync.WaitGroup
	swg.Add(2)
	go func() {
		defer swg.Done()
		if err := httpSrv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown cut short", "err", err)
			_ = httpSrv.Close()
		}
	}()
	go func() {
		defer swg.Done()
		done := make(chan struct{})
		go func() { grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-sctx.Done():
			log.Warn("grpc graceful stop cut short")
			grpcSrv.Stop()
			<-done
		}
	}()
	swg.Wait()
	wg.Wait()
	clean := true
	if repl != nil {
		if err := repl.Close(sctx); err != nil {
			log.Warn("peer queues not flushed before the deadline", "err", err)
			clean = false
		}
		for _, p := range repl.Status() {
			if p.Backlog > 0 {
				log.Warn("discarding unsent ops", "peer", p.Peer, "backlog", p.Backlog)
			}
		}
	}
	if err := st.Close(); err != nil {
		log.Warn("closing store", "err", err)
		clean = false
	}
	if c.readyFile != "" {
		_ = os.Remove(c.readyFile)
	}
	if runErr != nil {
		return runErr
	}
	log.Info("stopped", "clean", clean)
	return nil
}

// DefaultHTTPReadTimeout is --http-read-timeout's default: a 1 MiB body
// needs under 0.1 s on any link a load test runs on.
const DefaultHTTPReadTimeout = 15 * time.Second

// newHTTPServer is the HTTP server with every deadline set, so slow or idle
// clients cannot hold connections and handlers: a request's headers must
// arrive within min(5s, readTimeout) and headers and body within
// readTimeout (the body's read deadline: a handler reading a trickling body
// gets an error then); an answer must be written within twice that; an idle
// keep-alive connection is closed after a minute.
func newHTTPServer(h http.Handler, readTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(5*time.Second, readTimeout),
		ReadTimeout:       readTimeout,
		WriteTimeout:      2 * readTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// registerStore exports mapquake_store_entries, _high_water_entries and
// _info for st. This is the one place maptarget uses mapprobe.
func registerStore(reg prometheus.Registerer, st store.Store) error {
	info := st.Info()
	return metrics.RegisterStore(reg, st.Len, st.HighWater,
		metrics.StoreInfo{GoType: info.GoType, KeyType: info.KeyType, ValueType: info.ValueType})
}

// writeReadyFile writes the ready JSON atomically (temp file + rename), so a
// reader never sees half a file.
func writeReadyFile(path, httpAddr, grpcAddr string) error {
	data, err := json.Marshal(struct {
		HTTPAddr string `json:"http_addr"`
		GRPCAddr string `json:"grpc_addr"`
		PID      int    `json:"pid"`
	}{httpAddr, grpcAddr, os.Getpid()})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ready-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
