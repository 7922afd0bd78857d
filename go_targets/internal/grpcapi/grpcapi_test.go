package grpcapi

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
	"github.com/mapquake/mapquake/go_targets/internal/replicate"
	"github.com/mapquake/mapquake/go_targets/internal/store"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

type target struct {
	n     *node.Node
	addr  string
	st    store.Store
	m     *metrics.Metrics
	reg   *prometheus.Registry
	store pb.MapStoreClient
}

// startTarget serves a real store on 127.0.0.1:0; peers, if any, get every
// client write.
func startTarget(t *testing.T, storeName, valueType string, peers ...string) *target {
	t.Helper()
	return startTargetWith(t, storeName, valueType, node.Limits{}, peers...)
}

// startTargetWith is startTarget with limits (zero fields: defaults).
func startTargetWith(t *testing.T, storeName, valueType string, limits node.Limits, peers ...string) *target {
	t.Helper()
	return startTargetToken(t, storeName, valueType, limits, testAdminToken, peers...)
}

// testAdminToken is the admin token of startTarget's targets (and what they
// send their peers); its client sends it with every call.
const testAdminToken = "test-admin-token"

func withToken(token string) grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
		cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

// startTargetToken is startTargetWith with this admin token ("": none).
func startTargetToken(t *testing.T, storeName, valueType string, limits node.Limits, token string, peers ...string) *target {
	t.Helper()
	st, err := store.New(storeName, store.Options{ValueType: valueType})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	m, err := metrics.NewMetrics(reg, metrics.BuildInfo{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var repl node.Replicator
	if len(peers) > 0 {
		r, err := replicate.New(replicate.Config{Origin: lis.Addr().String(), Peers: peers, Queue: replicate.Unbounded,
			Metrics: m, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, AdminToken: token})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close(context.Background()) })
		repl = r
	}
	n := node.New(st, m, repl)
	n.SetLimits(limits)
	n.SetAdminToken(token)
	srv := grpc.NewServer(ServerOptions(n)...)
	Register(srv, n)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), withToken(token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &target{n: n, addr: lis.Addr().String(), st: st, m: m, reg: reg, store: pb.NewMapStoreClient(conn)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestMapStore(t *testing.T) {
	tg := startTarget(t, "mutexmap", "[]byte")
	c := tg.store
	if _, err := c.Put(ctx(t), &pb.PutRequest{Key: "alpha", Value: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx(t), &pb.GetRequest{Key: "alpha"})
	if err != nil || !got.GetFound() || string(got.GetValue()) != "one" {
		t.Fatalf("get alpha: %v %v", got, err)
	}
	if got, err := c.Get(ctx(t), &pb.GetRequest{Key: "missing"}); err != nil || got.GetFound() {
		t.Fatalf("get missing: %v %v", got, err)
	}
	batch := &pb.BatchPutRequest{}
	for i := range 1000 {
		batch.Entries = append(batch.Entries, &pb.PutRequest{Key: fmt.Sprintf("k%d", i), Value: []byte("v")})
	}
	if r, err := c.BatchPut(ctx(t), batch); err != nil || r.GetWritten() != 1000 {
		t.Fatalf("batch: %v %v", r, err)
	}
	stream, err := c.PutStream(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if err := stream.Send(&pb.PutRequest{Key: fmt.Sprintf("s%d", i), Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := stream.CloseAndRecv(); err != nil || r.GetWritten() != 500 {
		t.Fatalf("stream: %v %v", r, err)
	}
	for _, want := range []bool{true, false} {
		if r, err := c.Delete(ctx(t), &pb.DeleteRequest{Key: "alpha"}); err != nil || r.GetExisted() != want {
			t.Fatalf("delete: %v %v, want existed=%v", r, err, want)
		}
	}
	st, err := c.Stats(ctx(t), &pb.StatsRequest{Gc: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.GetEntries() != 1500 || st.GetHighWater() != 1501 || st.GetStore() != "mutexmap" ||
		st.GetGoType() != "map[string][]byte" || st.GetLiveBytes() == 0 || st.GetNumGc() == 0 ||
		!strings.HasPrefix(st.GetGoVersion(), "go1.") || st.GetKeyType() != "string" || st.GetValueType() != "[]byte" {
		t.Errorf("stats: %v", st)
	}
	want := `
# HELP mapquake_ops_total Requests handled by op, protocol and result (ok, miss, error). A batch is one op.
# TYPE mapquake_ops_total counter
mapquake_ops_total{op="batch_put",protocol="grpc",result="error"} 0
mapquake_ops_total{op="batch_put",protocol="grpc",result="miss"} 0
mapquake_ops_total{op="batch_put",protocol="grpc",result="ok"} 1
mapquake_ops_total{op="delete",protocol="grpc",result="error"} 0
mapquake_ops_total{op="delete",protocol="grpc",result="miss"} 1
mapquake_ops_total{op="delete",protocol="grpc",result="ok"} 1
mapquake_ops_total{op="delete",protocol="http",result="error"} 0
mapquake_ops_total{op="delete",protocol="http",result="miss"} 0
mapquake_ops_total{op="delete",protocol="http",result="ok"} 0
mapquake_ops_total{op="get",protocol="grpc",result="error"} 0
mapquake_ops_total{op="get",protocol="grpc",result="miss"} 1
mapquake_ops_total{op="get",protocol="grpc",result="ok"} 1
mapquake_ops_total{op="get",protocol="http",result="error"} 0
mapquake_ops_total{op="get",protocol="http",result="miss"} 0
mapquake_ops_total{op="get",protocol="http",result="ok"} 0
mapquake_ops_total{op="put",protocol="grpc",result="error"} 0
mapquake_ops_total{op="put",protocol="grpc",result="miss"} 0
mapquake_ops_total{op="put",protocol="grpc",result="ok"} 1
mapquake_ops_total{op="put",protocol="http",result="error"} 0
mapquake_ops_total{op="put",protocol="http",result="miss"} 0
mapquake_ops_total{op="put",protocol="http",result="ok"} 0
mapquake_ops_total{op="put_stream",protocol="grpc",result="error"} 0
mapquake_ops_total{op="put_stream",protocol="grpc",result="miss"} 0
mapquake_ops_total{op="put_stream",protocol="grpc",result="ok"} 1
mapquake_ops_total{op="replicate",protocol="grpc",result="error"} 0
mapquake_ops_total{op="replicate",protocol="grpc",result="miss"} 0
mapquake_ops_total{op="replicate",protocol="grpc",result="ok"} 0
# HELP mapquake_writes_total Map writes applied (puts and deletes, each batch entry and each replicated op counted).
# TYPE mapquake_writes_total counter
mapquake_writes_total 1503
`
	// writes: 1 put + 1000 batch entries + 500 streamed + 2 deletes
	if err := testutil.GatherAndCompare(tg.reg, strings.NewReader(want), "mapquake_ops_total", "mapquake_writes_total"); err != nil {
		t.Error(err)
	}
}

func TestInvalidArguments(t *testing.T) {
	tg := startTarget(t, "structmap", "int64")
	for name, call := range map[string]func() error{
		"empty key": func() error { _, err := tg.store.Put(ctx(t), &pb.PutRequest{Value: []byte("1")}); return err },
		"bad int64": func() error {
			_, err := tg.store.Put(ctx(t), &pb.PutRequest{Key: "k", Value: []byte("x")})
			return err
		},
		"bad batch entry": func() error {
			_, err := tg.store.BatchPut(ctx(t), &pb.BatchPutRequest{Entries: []*pb.PutRequest{
				{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("nope")}}})
			return err
		},
		"get empty key": func() error { _, err := tg.store.Get(ctx(t), &pb.GetRequest{}); return err },
	} {
		if code := status.Code(call()); code != codes.InvalidArgument {
			t.Errorf("%s: code %v", name, code)
		}
	}
	if tg.st.Len() != 1 { // "a" from the batch stays applied
		t.Errorf("len = %d", tg.st.Len())
	}
}

// TestReplicationBetweenTargets: writes made on a reach b; b applies them and
// does not send them anywhere, even though b replicates its own writes to a.
func TestReplicationBetweenTargets(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody serves: b's only peer
	if err != nil {
		t.Fatal(err)
	}
	downAddr := lis.Addr().String()
	_ = lis.Close()
	b := startTarget(t, "syncmap", "[8]byte", downAddr)
	a := startTarget(t, "shardedmap", "[8]byte", b.addr) // b's peer stays down: its writes just queue

	batch := &pb.BatchPutRequest{}
	for i := range 700 {
		batch.Entries = append(batch.Entries, &pb.PutRequest{Key: fmt.Sprintf("k%d", i), Value: []byte("12345678")})
	}
	if _, err := a.store.BatchPut(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	if _, err := a.store.Delete(ctx(t), &pb.DeleteRequest{Key: "k0"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.st.Len() != 699 || testutil.ToFloat64(a.m.Peer(b.addr).Backlog) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b has %d entries, a's backlog %v", b.st.Len(), testutil.ToFloat64(a.m.Peer(b.addr).Backlog))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v, ok := b.st.Get("k1"); !ok || string(v) != "12345678" {
		t.Errorf("b k1 = %q %v", v, ok)
	}
	pa := b.m.Peer(downAddr)
	if got := testutil.ToFloat64(pa.Backlog) + testutil.ToFloat64(pa.Sent) + testutil.ToFloat64(pa.Dropped); got != 0 {
		t.Errorf("b re-replicated %v ops", got)
	}
}
