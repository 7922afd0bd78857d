// Package loadgen is mapload's engine: a bounded, deterministic write load
// against one maptarget over HTTP or gRPC.
//
// Keys. Write j (j = 0, 1, …, Ops-1, shared by all workers) goes to key
// number i, named Prefix + i zero-padded to 16 bytes ("k000000000000000", …; the Python workloads use
// the same names):
//
//	sequential  i = j mod KeySpace, so Ops = KeySpace writes each key once
//	uniform     i uniform in [0, KeySpace)
//	zipf        i from Zipf(s = ZipfS, v = 1) over [0, KeySpace), key 0 hottest
//
// uniform and zipf draw i from a math/rand/v2 PCG seeded with (Seed,
// mix(j)), so the keys of the first N writes depend only on the seed, not on
// concurrency or timing. The summary reports how many distinct keys were
// written successfully (distinct_keys), the model's input.
//
// Values are ValueSize bytes of ASCII digits "1234567890…": valid for every
// maptarget value type ([N]byte pads or truncates; an int64 store needs
// ValueSize ≤ 18).
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// Key distributions.
const (
	Sequential = "sequential"
	Uniform    = "uniform"
	Zipf       = "zipf"
)

// Limits that keep every run bounded.
const (
	MaxDuration = 24 * time.Hour
	MaxBatch    = 100000
	MaxKeySpace = 1 << 30
)

// Config is one load run.
type Config struct {
	Addr        string // host:port; must be on Allow
	Protocol    string // "http" or "grpc"
	Ops         int64  // writes to send, > 0
	Keys        string // Sequential, Uniform or Zipf
	KeySpace    int64  // distinct keys, > 0
	Concurrency int    // workers, each with its own connection
	Batch       int    // writes per request (grpc only when > 1)
	Stream      bool   // grpc: send each batch as one PutStream instead of BatchPut
	Duration    time.Duration
	ValueSize   int
	Seed        uint64
	ZipfS       float64
	KeyPrefix   string
	// RequestTimeout bounds one request (default 10s).
	RequestTimeout time.Duration
	// Allow is where Addr may be (the zero value: loopback only).
	Allow AllowList
}

// Summary is mapload's JSON output. Latencies are per request (one
// BatchPut or stream of Batch writes counts once).
type Summary struct {
	Ops          int64   `json:"ops"`
	FailedOps    int64   `json:"failed_ops"`
	OpsPerS      float64 `json:"ops_per_s"`
	Errors       int64   `json:"errors"`
	Requests     int64   `json:"requests"`
	DurationS    float64 `json:"duration_s"`
	LatencyP50S  float64 `json:"latency_p50_s"`
	LatencyP90S  float64 `json:"latency_p90_s"`
	LatencyP99S  float64 `json:"latency_p99_s"`
	LatencyMaxS  float64 `json:"latency_max_s"`
	Protocol     string  `json:"protocol"`
	Keys         string  `json:"keys"`
	KeySpace     int64   `json:"key_space"`
	DistinctKeys int64   `json:"distinct_keys"`
	KeyPrefix    string  `json:"key_prefix"`
	Batch        int     `json:"batch"`
	Stream       bool    `json:"stream"`
	Concurrency  int     `json:"concurrency"`
	ValueSize    int     `json:"value_size"`
	Seed         uint64  `json:"seed"`
	ZipfS        float64 `json:"zipf_s,omitempty"`
	// StoppedBy is "ops" (all writes sent), "duration" or "cancelled".
	StoppedBy  string `json:"stopped_by"`
	FirstError string `json:"first_error,omitempty"`
	Addr       string `json:"addr"`
}

// Validate checks a config; its errors name the flag, the value and what is
// allowed.
func (c *Config) Validate() error {
	switch {
	case c.Protocol != "http" && c.Protocol != "grpc":
		return fmt.Errorf("--protocol %q is not one of: http, grpc", c.Protocol)
	case c.Keys != Sequential && c.Keys != Uniform && c.Keys != Zipf:
		return fmt.Errorf("--keys %q is not one of: sequential, uniform, zipf", c.Keys)
	case c.Ops <= 0:
		return fmt.Errorf("--ops %d is invalid: want at least 1", c.Ops)
	case c.KeySpace <= 0 || c.KeySpace > MaxKeySpace:
		return fmt.Errorf("--key-space %d is invalid: want 1..%d", c.KeySpace, int64(MaxKeySpace))
	case c.Concurrency <= 0 || c.Concurrency > 4096:
		return fmt.Errorf("--concurrency %d is invalid: want 1..4096", c.Concurrency)
	case c.Batch <= 0 || c.Batch > MaxBatch:
		return fmt.Errorf("--batch %d is invalid: want 1..%d", c.Batch, MaxBatch)
	case c.Protocol == "http" && c.Batch > 1:
		return fmt.Errorf("--batch %d is invalid with --protocol http: HTTP has no batch call, use --batch 1 or --protocol grpc", c.Batch)
	case c.Protocol == "http" && c.Stream:
		return errors.New("--stream needs --protocol grpc")
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("--duration %v is invalid: want more than 0 and at most %v", c.Duration, MaxDuration)
	case c.ValueSize < 0 || c.ValueSize > 1<<20:
		return fmt.Errorf("--value-size %d is invalid: want 0..%d", c.ValueSize, 1<<20)
	case c.Keys == Zipf && !(c.ZipfS > 1):
		return fmt.Errorf("--zipf-s %v is invalid: want a number greater than 1", c.ZipfS)
	}
	return nil
}

// keyGen maps a write index to a key number.
type keyGen struct {
	keys     string
	keySpace uint64
	seed     uint64
	pcg      rand.PCG
	zipf     *rand.Zipf
}

func newKeyGen(c *Config) *keyGen {
	g := &keyGen{keys: c.Keys, keySpace: uint64(c.KeySpace), seed: c.Seed}
	if c.Keys == Zipf && c.KeySpace > 1 {
		g.zipf = rand.NewZipf(rand.New(&g.pcg), c.ZipfS, 1, uint64(c.KeySpace-1))
	}
	return g
}

// mix is splitmix64's finaliser: it spreads consecutive indices apart before
// they seed the PCG.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (g *keyGen) key(j uint64) uint64 {
	switch g.keys {
	case Sequential:
		return j % g.keySpace
	case Uniform:
		g.pcg.Seed(g.seed, mix(j))
		hi, _ := bits.Mul64(g.pcg.Uint64(), g.keySpace) // Lemire: unbiased enough for load
		return hi
	default:
		if g.zipf == nil {
			return 0
		}
		g.pcg.Seed(g.seed, mix(j))
		return g.zipf.Uint64()
	}
}

// KeyLength is the length of every key name with a prefix shorter than it: the
// prefix and the zero-padded index. 16 bytes make each key one size-class-16
// allocation on the target, an exact 16 B; shorter keys would share 16-B
// tiny-allocator blocks in a way that depends on what else the server allocated.
const KeyLength = 16

// KeyName is key i's name: prefix + i zero-padded to KeyLength bytes
// ("k000000000000017"), the same naming as mapquake's Python workloads.
func KeyName(prefix string, i uint64) string {
	digits := strconv.FormatUint(i, 10)
	if pad := KeyLength - len(prefix) - len(digits); pad > 0 {
		return prefix + strings.Repeat("0", pad) + digits
	}
	return prefix + digits
}

// Value returns the value mapload writes: size ASCII digits.
func Value(size int) []byte {
	v := make([]byte, size)
	for i := range v {
		v[i] = '1' + byte(i%10)
		if i%10 == 9 {
			v[i] = '0'
		}
	}
	return v
}

// sender sends one request of writes.
type sender interface {
	send(ctx context.Context, keys []string, value []byte) error
	close()
}

type worker struct {
	hist                       hist
	ops, failedOps, errs, reqs int64
	firstErr                   error
}

// Run sends the load and returns its summary. It stops after Ops writes,
// after Duration, or when ctx is cancelled, whichever comes first. Errors of
// individual requests are counted, not returned; Run fails only on a bad
// config, a refused address or a client that cannot be built.
func Run(ctx context.Context, c Config) (Summary, error) {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "k"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if err := c.Validate(); err != nil {
		return Summary{}, err
	}
	dial, err := c.Allow.CheckAddr(ctx, c.Addr)
	if err != nil {
		return Summary{}, err
	}
	senders := make([]sender, c.Concurrency)
	var httpClient *http.Client
	if c.Protocol == "http" {
		httpClient = &http.Client{Transport: &http.Transport{
			MaxIdleConns: c.Concurrency, MaxIdleConnsPerHost: c.Concurrency, MaxConnsPerHost: c.Concurrency,
			IdleConnTimeout: 30 * time.Second, DisableCompression: true,
		}}
		defer httpClient.CloseIdleConnections()
	}
	for i := range senders {
		if c.Protocol == "http" {
			senders[i] = &httpSender{client: httpClient, base: "http://" + dial + "/kv/"}
			continue
		}
		conn, err := grpc.NewClient(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			for _, s := range senders[:i] {
				s.close()
			}
			return Summary{}, fmt.Errorf("grpc client for %s: %w", dial, err)
		}
		senders[i] = &grpcSender{conn: conn, client: pb.NewMapStoreClient(conn), stream: c.Stream}
	}
	defer func() {
		for _, s := range senders {
			s.close()
		}
	}()

	value := Value(c.ValueSize)
	written := newBitset(uint64(c.KeySpace))
	runCtx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var next atomic.Int64
	workers := make([]worker, c.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[w].run(runCtx, &c, senders[w], &next, value, written)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	s := Summary{
		DurationS: elapsed.Seconds(), Protocol: c.Protocol, Keys: c.Keys, KeySpace: c.KeySpace,
		KeyPrefix: c.KeyPrefix, Batch: c.Batch, Stream: c.Stream, Concurrency: c.Concurrency,
		ValueSize: c.ValueSize, Seed: c.Seed, Addr: dial, DistinctKeys: written.count(),
	}
	if c.Keys == Zipf {
		s.ZipfS = c.ZipfS
	}
	var h hist
	for i := range workers {
		w := &workers[i]
		s.Ops += w.ops
		s.FailedOps += w.failedOps
		s.Errors += w.errs
		s.Requests += w.reqs
		h.merge(&w.hist)
		if s.FirstError == "" && w.firstErr != nil {
			s.FirstError = w.firstErr.Error()
		}
	}
	s.OpsPerS = float64(s.Ops) / max(elapsed.Seconds(), 1e-9)
	s.LatencyP50S = h.quantile(0.50).Seconds()
	s.LatencyP90S = h.quantile(0.90).Seconds()
	s.LatencyP99S = h.quantile(0.99).Seconds()
	s.LatencyMaxS = time.Duration(h.max).Seconds()
	switch {
	case next.Load() >= c.Ops:
		s.StoppedBy = "ops"
	case ctx.Err() != nil:
		s.StoppedBy = "cancelled"
	default:
		s.StoppedBy = "duration"
	}
	return s, nil
}

func (w *worker) run(ctx context.Context, c *Config, s sender, next *atomic.Int64, value []byte, written *bitset) {
	gen := newKeyGen(c)
	b := int64(c.Batch)
	keys := make([]string, 0, c.Batch)
	ids := make([]uint64, 0, c.Batch)
	for ctx.Err() == nil {
		first := next.Add(b) - b
		if first >= c.Ops {
			return
		}
		n := min(b, c.Ops-first)
		keys, ids = keys[:0], ids[:0]
		for j := first; j < first+n; j++ {
			id := gen.key(uint64(j))
			ids = append(ids, id)
			keys = append(keys, KeyName(c.KeyPrefix, id))
		}
		// In-flight requests finish even when the duration ends: only the
		// request timeout (or the caller's ctx) cuts them.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.RequestTimeout)
		t0 := time.Now()
		err := s.send(rctx, keys, value)
		w.hist.record(time.Since(t0))
		cancel()
		w.reqs++
		if err != nil {
			w.errs++
			w.failedOps += n
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.ops += n
		for _, id := range ids {
			written.set(id)
		}
	}
}

type httpSender struct {
	client *http.Client
	base   string
}

func (h *httpSender) send(ctx context.Context, keys []string, value []byte) error {
	for _, k := range keys {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, h.base+k, bytes.NewReader(value))
		if err != nil {
			return err
		}
		resp, err := h.client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
			return fmt.Errorf("PUT %s: %s: %s", k, resp.Status, bytes.TrimSpace(body))
		}
	}
	return nil
}

func (h *httpSender) close() {}

type grpcSender struct {
	conn   *grpc.ClientConn
	client pb.MapStoreClient
	stream bool
	batch  pb.BatchPutRequest
	puts   []pb.PutRequest
}

func (g *grpcSender) send(ctx context.Context, keys []string, value []byte) error {
	if len(keys) == 1 && !g.stream {
		_, err := g.client.Put(ctx, &pb.PutRequest{Key: keys[0], Value: value})
		return err
	}
	if cap(g.puts) < len(keys) {
		g.puts = make([]pb.PutRequest, len(keys))
	}
	g.batch.Entries = g.batch.Entries[:0]
	for i, k := range keys {
		p := &g.puts[i]
		p.Key, p.Value = k, value
		g.batch.Entries = append(g.batch.Entries, p)
	}
	if !g.stream {
		r, err := g.client.BatchPut(ctx, &g.batch)
		if err == nil && r.GetWritten() != uint64(len(keys)) {
			err = fmt.Errorf("BatchPut wrote %d of %d", r.GetWritten(), len(keys))
		}
		return err
	}
	st, err := g.client.PutStream(ctx)
	if err != nil {
		return err
	}
	for _, p := range g.batch.Entries {
		if err := st.Send(p); err != nil {
			_, err = st.CloseAndRecv() // the real error comes with the status
			return err
		}
	}
	r, err := st.CloseAndRecv()
	if err == nil && r.GetWritten() != uint64(len(keys)) {
		err = fmt.Errorf("PutStream wrote %d of %d", r.GetWritten(), len(keys))
	}
	return err
}

func (g *grpcSender) close() { _ = g.conn.Close() }

// bitset records which key numbers were written, for distinct_keys.
type bitset struct{ words []atomic.Uint64 }

func newBitset(n uint64) *bitset { return &bitset{words: make([]atomic.Uint64, (n+63)/64)} }

func (b *bitset) set(i uint64) { b.words[i/64].Or(1 << (i % 64)) }

func (b *bitset) count() int64 {
	var n int64
	for i := range b.words {
		n += int64(bits.OnesCount64(b.words[i].Load()))
	}
	return n
}
