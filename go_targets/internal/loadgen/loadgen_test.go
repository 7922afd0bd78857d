package loadgen

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/mapquake/mapquake/go_targets/internal/grpcapi"
	"github.com/mapquake/mapquake/go_targets/internal/httpapi"
	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
	"github.com/mapquake/mapquake/go_targets/internal/store"
)

func TestAllowListDefaultIsLoopbackOnly(t *testing.T) {
	var zero AllowList
	parsed, err := ParseAllowList("")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []AllowList{zero, parsed} {
		for addr, want := range map[string]bool{
			"127.0.0.1": true, "127.9.9.9": true, "::1": true, "::ffff:127.0.0.1": true,
			"198.18.0.1": false, "10.0.0.1": false, "8.8.8.8": false, "::": false, "0.0.0.0": false,
		} {
			if got := a.AllowsIP(netip.MustParseAddr(addr)); got != want {
				t.Errorf("AllowsIP(%s) = %v", addr, got)
			}
		}
		if a.String() != "loopback" {
			t.Errorf("String() = %q", a.String())
		}
	}
}

func TestAllowListNetworksAndNames(t *testing.T) {
	// The form orchestrator.core.safety's cli_value() writes: loopback networks included.
	a, err := ParseAllowList("127.0.0.0/8,::1/128,198.18.0.0/15, 10.244.3.7 ,Cache-0.MQ-run.svc.,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "198.18.0.1": true, "198.19.255.254": true, "::ffff:198.18.0.1": true,
		"10.244.3.7": true, "fd00::1": true,
		"198.17.255.255": false, "198.20.0.0": false, "10.244.3.8": false, "8.8.8.8": false, "fe80::1": false,
	} {
		if got := a.AllowsIP(netip.MustParseAddr(addr)); got != want {
			t.Errorf("AllowsIP(%s) = %v", addr, got)
		}
	}
	for name, want := range map[string]bool{
		"cache-0.mq-run.svc": true, "CACHE-0.mq-run.svc.": true, "cache-1.mq-run.svc": false, "mq-run.svc": false,
	} {
		if got := a.AllowsName(name); got != want {
			t.Errorf("AllowsName(%s) = %v", name, got)
		}
	}
	want := "loopback or 198.18.0.0/15 or 10.244.3.7/32 or fd00::/8 or the names cache-0.mq-run.svc"
	if a.String() != want {
		t.Errorf("String() = %q, want %q", a.String(), want)
	}
	for _, bad := range []string{"198.18.0.1/15", "10.0.0.0/33", "no spaces", "bad..name", "a/b"} {
		if _, err := ParseAllowList(bad); err == nil || !strings.Contains(err.Error(), "--allow") {
			t.Errorf("ParseAllowList(%q) = %v", bad, err)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	ctx := context.Background()
	var loopback AllowList
	if got, err := loopback.CheckAddr(ctx, "localhost:9"); err != nil || !strings.HasSuffix(got, ":9") {
		t.Errorf("localhost: %q %v", got, err)
	}
	if got, err := loopback.CheckAddr(ctx, "[::ffff:127.0.0.1]:9"); err != nil || got != "127.0.0.1:9" {
		t.Errorf("mapped loopback: %q %v", got, err)
	}
	for _, bad := range []string{"198.18.0.1:9090", "8.8.8.8:53", "[2001:db8::1]:80", "nohostport", "0.0.0.0:80"} {
		if _, err := loopback.CheckAddr(ctx, bad); err == nil || !strings.Contains(err.Error(), "--addr") {
			t.Errorf("CheckAddr(%q) = %v", bad, err)
		}
	}
	run, err := ParseAllowList("198.18.0.0/15,cache-0.mq-run.invalid")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := run.CheckAddr(ctx, "198.18.0.1:9090"); err != nil || got != "198.18.0.1:9090" {
		t.Errorf("198.18.0.1 with --allow: %q %v", got, err)
	}
	// A listed name is the run's own: dialled as it is, never resolved (.invalid never resolves).
	if got, err := run.CheckAddr(ctx, "cache-0.mq-run.invalid:9090"); err != nil || got != "cache-0.mq-run.invalid:9090" {
		t.Errorf("listed name: %q %v", got, err)
	}
	// Any other name is resolved, and every address must be allowed (localhost: from /etc/hosts).
	if got, err := run.CheckAddr(ctx, "localhost:9"); err != nil || got == "localhost:9" {
		t.Errorf("unlisted name: %q %v", got, err)
	}
	if _, err := run.CheckAddr(ctx, "8.8.8.8:53"); err == nil || !strings.Contains(err.Error(),
		"mapload only sends to loopback or 198.18.0.0/15 or the names cache-0.mq-run.invalid (see --allow), not 8.8.8.8") {
		t.Errorf("8.8.8.8: %v", err)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Microsecond, 0.99: 990 * time.Microsecond, 1: time.Millisecond} {
		got := h.quantile(q)
		if d := float64(got-want) / float64(want); d > 0.01 || d < -0.01 {
			t.Errorf("q%v = %v, want %v ±1%%", q, got, want)
		}
	}
	for _, v := range []uint64{0, 1, 255, 256, 257, 1 << 20, 3<<40 + 7, 1<<63 + 5} {
		lo, hi := histBounds(histIndex(v))
		if v < lo || v >= hi && hi != 0 {
			t.Errorf("%d not in bucket [%d,%d)", v, lo, hi)
		}
	}
}

func TestKeysDeterministic(t *testing.T) {
	for _, dist := range []string{Uniform, Zipf} {
		c := Config{Keys: dist, KeySpace: 1000, Seed: 7, ZipfS: 1.1}
		a, b := newKeyGen(&c), newKeyGen(&c)
		seen := map[uint64]bool{}
		for j := uint64(5000); j > 0; j-- { // any order of indices gives the same keys
			k := a.key(j)
			if k >= 1000 {
				t.Fatalf("%s key %d out of range", dist, k)
			}
			if k != b.key(j) {
				t.Fatalf("%s: index %d not deterministic", dist, j)
			}
			seen[k] = true
		}
		if len(seen) < 100 {
			t.Errorf("%s: only %d distinct keys in 5000 draws", dist, len(seen))
		}
	}
	c := Config{Keys: Sequential, KeySpace: 10}
	if g := newKeyGen(&c); g.key(13) != 3 || KeyName("k", 3) != "k000000000000003" || KeyName("key-", 12345678901234) != "key-12345678901234" {
		t.Error("sequential")
	}
	if string(Value(12)) != "123456789012" {
		t.Errorf("value %q", Value(12))
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Addr: "127.0.0.1:1", Protocol: "grpc", Ops: 1, Keys: Sequential, KeySpace: 1, Concurrency: 1, Batch: 1, Duration: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for want, mutate := range map[string]func(*Config){
		`--protocol "udp" is not one of: http, grpc`: func(c *Config) { c.Protocol = "udp" },
		`--keys "hot" is not one of`:                 func(c *Config) { c.Keys = "hot" },
		"--ops 0 is invalid":                         func(c *Config) { c.Ops = 0 },
		"HTTP has no batch call":                     func(c *Config) { c.Protocol, c.Batch = "http", 10 },
		"--duration 0s is invalid":                   func(c *Config) { c.Duration = 0 },
		"--zipf-s 1 is invalid":                      func(c *Config) { c.Keys, c.ZipfS = Zipf, 1 },
	} {
		c := ok
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
}

// serve runs a real store behind both APIs on 127.0.0.1:0.
func serve(t *testing.T) (grpcAddr, httpAddr string, st store.Store) {
	t.Helper()
	st, err := store.New("mutexmap", store.Options{ValueType: "[]byte"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m, err := metrics.NewMetrics(prometheus.NewRegistry(), metrics.BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	n := node.New(st, m, nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	grpcapi.Register(srv, n)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	hs := httptest.NewServer(httpapi.Handler(n, httpapi.Options{}))
	t.Cleanup(hs.Close)
	return lis.Addr().String(), strings.TrimPrefix(hs.URL, "http://"), st
}

func TestRunAgainstRealTarget(t *testing.T) {
	grpcAddr, httpAddr, st := serve(t)
	runs := []Config{
		{Addr: grpcAddr, Protocol: "grpc", Ops: 3000, Keys: Sequential, KeySpace: 3000, Batch: 64, Concurrency: 3},
		{Addr: grpcAddr, Protocol: "grpc", Ops: 1000, Keys: Uniform, KeySpace: 500, Batch: 10, Stream: true, Concurrency: 2, KeyPrefix: "u"},
		{Addr: grpcAddr, Protocol: "grpc", Ops: 200, Keys: Zipf, KeySpace: 100, ZipfS: 1.5, Batch: 1, Concurrency: 2, KeyPrefix: "z"},
		{Addr: httpAddr, Protocol: "http", Ops: 300, Keys: Sequential, KeySpace: 100, Batch: 1, Concurrency: 2, KeyPrefix: "h"},
	}
	var distinct int64
	for _, c := range runs {
		c.Duration, c.ValueSize, c.Seed = 30*time.Second, 16, 3
		s, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		wantReqs := (c.Ops + int64(c.Batch) - 1) / int64(c.Batch)
		if s.Ops != c.Ops || s.Errors != 0 || s.Requests != wantReqs || s.StoppedBy != "ops" ||
			s.LatencyP50S <= 0 || s.LatencyP99S < s.LatencyP50S || s.OpsPerS <= 0 {
			t.Errorf("%s/%s: %+v", c.Protocol, c.Keys, s)
		}
		distinct += s.DistinctKeys
	}
	if got := int64(st.Len()); got != distinct {
		t.Errorf("store holds %d keys, runs report %d distinct", got, distinct)
	}
	if v, ok := st.Get(KeyName("k", 2999)); !ok || string(v) != "1234567890123456" {
		t.Errorf("key 2999 = %q %v", v, ok)
	}
}

func TestDurationBoundsTheRun(t *testing.T) {
	grpcAddr, _, _ := serve(t)
	s, err := Run(context.Background(), Config{Addr: grpcAddr, Protocol: "grpc", Ops: 1 << 40, Keys: Uniform,
		KeySpace: 1000, Batch: 1, Concurrency: 1, Duration: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.StoppedBy != "duration" || s.DurationS > 5 || s.Ops == 0 {
		t.Errorf("%+v", s)
	}
}
