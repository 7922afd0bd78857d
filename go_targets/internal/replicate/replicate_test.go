package replicate

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// fakePeer is a real gRPC server whose Replica service records what it gets.
type fakePeer struct {
	pb.UnimplementedReplicaServer
	mu   sync.Mutex
	ops  []*pb.ReplicateOp
	from map[string]bool

	addr string
	srv  *grpc.Server
}

func (f *fakePeer) Replicate(_ context.Context, req *pb.ReplicateRequest) (*pb.ReplicateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, req.GetOps()...)
	f.from[req.GetOrigin()] = true
	return &pb.ReplicateResponse{Applied: uint64(len(req.GetOps()))}, nil
}

func (f *fakePeer) received() []*pb.ReplicateOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pb.ReplicateOp(nil), f.ops...)
}

// serve starts (or restarts) the peer on addr ("127.0.0.1:0" for a new port).
func (f *fakePeer) serve(t *testing.T, addr string) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	f.addr = lis.Addr().String()
	f.srv = grpc.NewServer()
	pb.RegisterReplicaServer(f.srv, f)
	go func() { _ = f.srv.Serve(lis) }()
	srv := f.srv
	t.Cleanup(srv.Stop)
}

func newFakePeer(t *testing.T) *fakePeer {
	f := &fakePeer{from: map[string]bool{}}
	f.serve(t, "127.0.0.1:0")
	return f
}

func newReplicator(t *testing.T, cfg Config) (*Replicator, *metrics.Metrics) {
	t.Helper()
	m, err := metrics.NewMetrics(prometheus.NewRegistry(), metrics.BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics = m
	cfg.Origin = "127.0.0.1:1"
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	cfg.RPCTimeout = 2 * time.Second
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Close(ctx)
	})
	return r, m
}

// eventually polls cond every 5ms until it holds or the deadline passes.
func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func key(i int) string { return fmt.Sprintf("k%d", i) }

func TestReplicatesToLivePeerInOrder(t *testing.T) {
	a, b := newFakePeer(t), newFakePeer(t)
	r, m := newReplicator(t, Config{Peers: []string{a.addr, b.addr}, Queue: Bounded, Capacity: 100000})
	const n = 3000 // several batches and several chunks
	for i := range n {
		r.Put(key(i), []byte{byte(i)})
	}
	r.Delete(key(0))
	for _, f := range []*fakePeer{a, b} {
		eventually(t, "peer received all ops", 10*time.Second, func() bool { return len(f.received()) == n+1 })
		ops := f.received()
		for i := range n {
			if ops[i].GetKind() != pb.ReplicateOp_KIND_PUT || ops[i].GetKey() != key(i) || ops[i].GetValue()[0] != byte(i) {
				t.Fatalf("op %d = %v", i, ops[i])
			}
		}
		if last := ops[n]; last.GetKind() != pb.ReplicateOp_KIND_DELETE || last.GetKey() != "k0" {
			t.Fatalf("last op = %v", last)
		}
		if !f.from["127.0.0.1:1"] {
			t.Errorf("origin not sent: %v", f.from)
		}
		pm := m.Peer(f.addr)
		eventually(t, "backlog 0", 5*time.Second, func() bool { return testutil.ToFloat64(pm.Backlog) == 0 })
		if got := testutil.ToFloat64(pm.Sent); got != n+1 {
			t.Errorf("sent = %v, want %d", got, n+1)
		}
		if got := testutil.ToFloat64(pm.BacklogBytes); got != 0 {
			t.Errorf("backlog bytes = %v", got)
		}
	}
}

// downPeer returns the address of a peer that is not serving yet.
func downPeer(t *testing.T) *fakePeer {
	f := newFakePeer(t)
	f.srv.Stop()
	return f
}

func TestPeerDownThenBack(t *testing.T) {
	for _, tc := range []struct {
		queue    QueueKind
		capacity int
		writes   int
		kept     int
	}{
		{Bounded, 1500, 2000, 1500},
		{Unbounded, 0, 2500, 2500},
	} {
		t.Run(tc.queue.String(), func(t *testing.T) {
			f := downPeer(t)
			r, m := newReplicator(t, Config{Peers: []string{f.addr}, Queue: tc.queue, Capacity: tc.capacity})
			pm := m.Peer(f.addr)
			value := make([]byte, 10)
			for i := range tc.writes {
				r.Put(key(i), value)
			}
			// Nothing can be sent: the backlog holds exactly what fits.
			eventually(t, "a failed attempt", 5*time.Second, func() bool { return testutil.ToFloat64(pm.Errors) >= 1 })
			if got := testutil.ToFloat64(pm.Backlog); got != float64(tc.kept) {
				t.Errorf("backlog = %v, want %d", got, tc.kept)
			}
			if got := testutil.ToFloat64(pm.Dropped); got != float64(tc.writes-tc.kept) {
				t.Errorf("dropped = %v, want %d", got, tc.writes-tc.kept)
			}
			wantBytes := 0
			for i := range tc.kept {
				wantBytes += OpSlotBytes + len(key(i)) + len(value)
			}
			if got := testutil.ToFloat64(pm.BacklogBytes); got != float64(wantBytes) {
				t.Errorf("backlog bytes = %v, want %d", got, wantBytes)
			}
			if st := r.Status(); st[0].Backlog != tc.kept || st[0].BacklogBytes != int64(wantBytes) {
				t.Errorf("status = %+v", st)
			}

			f.serve(t, f.addr) // the peer comes back
			eventually(t, "backlog drained", 15*time.Second, func() bool { return testutil.ToFloat64(pm.Backlog) == 0 })
			ops := f.received()
			if len(ops) != tc.kept {
				t.Fatalf("peer got %d ops, want %d", len(ops), tc.kept)
			}
			for i, o := range ops { // the oldest ops were kept, in order
				if o.GetKey() != key(i) {
					t.Fatalf("op %d key %q", i, o.GetKey())
				}
			}
			if n, b := r.peers[0].q.len(); n != 0 || b != 0 || r.peers[0].q.chunks != nil {
				t.Errorf("queue not empty after drain: n=%d bytes=%d", n, b)
			}
		})
	}
}

func TestQueueChunks(t *testing.T) {
	m, err := metrics.NewMetrics(prometheus.NewRegistry(), metrics.BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	q := newQueue(0, m.Peer("p"))
	for i := range 2*ChunkOps + 3 {
		if !q.push(KindPut, key(i), nil) {
			t.Fatal("unbounded push refused")
		}
	}
	if len(q.chunks) != 3 {
		t.Fatalf("chunks = %d", len(q.chunks))
	}
	got := q.peek(nil, 5000)
	if len(got) != 2*ChunkOps+3 || got[ChunkOps].key() != key(ChunkOps) {
		t.Fatalf("peek: %d ops", len(got))
	}
	q.pop(ChunkOps + 1)
	if got := q.peek(nil, 2); got[0].key() != key(ChunkOps+1) || len(q.chunks) != 2 {
		t.Fatalf("after pop: %q, %d chunks", got[0].key(), len(q.chunks))
	}
	q.pop(5000)
	if n, b := q.len(); n != 0 || b != 0 || q.chunks != nil {
		t.Fatalf("n=%d b=%d", n, b)
	}
	if OpSlotBytes != 32 {
		t.Errorf("op slot = %d bytes; update the memory docs", OpSlotBytes)
	}
}

func TestCloseWithDownPeerIsPrompt(t *testing.T) {
	f := downPeer(t)
	r, _ := newReplicator(t, Config{Peers: []string{f.addr}, Queue: Unbounded})
	r.Put("k", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func TestBoundedNeedsCapacity(t *testing.T) {
	if _, err := New(Config{Peers: []string{"127.0.0.1:1"}, Queue: Bounded}); err == nil {
		t.Fatal("want error")
	}
	if k, err := ParseQueueKind("unbounded"); err != nil || k != Unbounded {
		t.Fatal(k, err)
	}
	if _, err := ParseQueueKind("lossy"); err == nil || err.Error() != `"lossy" is not one of: bounded, unbounded` {
		t.Fatal(err)
	}
}

func TestTrimBatchKeepsUnderTheRequestLimit(t *testing.T) {
	big := func(n int) op { return op{buf: make([]byte, n), klen: 1} }
	batch := []op{big(400), big(400), big(400), big(400)}
	if got := len(trimBatch(batch, 1000)); got != 2 {
		t.Errorf("trimBatch to 1000 bytes kept %d ops of 432, want 2", got)
	}
	if got := len(trimBatch(batch[:1], 10)); got != 1 {
		t.Errorf("a batch keeps its first op whatever its size, kept %d", got)
	}
	if got := len(trimBatch(batch, 0)); got != 4 {
		t.Errorf("no cap kept %d", got)
	}
}
