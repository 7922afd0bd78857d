package grpcapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mapquake/mapquake/go_targets/internal/node"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

func TestAdminCallsNeedTheToken(t *testing.T) {
	tg := startTarget(t, "mutexmap", "[]byte")
	replicateReq := &pb.ReplicateRequest{Origin: "intruder", Ops: []*pb.ReplicateOp{{Kind: pb.ReplicateOp_KIND_PUT, Key: "k", Value: []byte("v")}}}
	for _, token := range []string{"", "wrong"} {
		conn, err := grpc.NewClient(tg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), withToken(token))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := pb.NewReplicaClient(conn).Replicate(ctx(t), replicateReq); status.Code(err) != codes.Unauthenticated {
			t.Errorf("Replicate with token %q: %v, want Unauthenticated", token, err)
		}
		c := pb.NewMapStoreClient(conn)
		if _, err := c.Stats(ctx(t), &pb.StatsRequest{Gc: true}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("Stats(gc) with token %q: %v, want Unauthenticated", token, err)
		}
		if _, err := c.Stats(ctx(t), &pb.StatsRequest{}); err != nil {
			t.Errorf("Stats without gc stays open: %v", err)
		}
		if _, err := c.Put(ctx(t), &pb.PutRequest{Key: "open", Value: []byte("v")}); err != nil {
			t.Errorf("Put stays open: %v", err)
		}
	}
	if _, ok := tg.st.Get("k"); ok {
		t.Error("an unauthenticated Replicate was applied")
	}

	none := startTargetToken(t, "mutexmap", "[]byte", node.Limits{}, "")
	if _, err := none.store.Stats(ctx(t), &pb.StatsRequest{Gc: true}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("Stats(gc) on a target without a token: %v, want PermissionDenied", err)
	}
}

// TestReplicationNeedsTheSameToken: a peer started with another token
// refuses a's batches; they stay queued.
func TestReplicationNeedsTheSameToken(t *testing.T) {
	b := startTargetToken(t, "syncmap", "[8]byte", node.Limits{}, "b-token")
	a := startTarget(t, "shardedmap", "[8]byte", b.addr)
	batch := &pb.BatchPutRequest{}
	for i := range 10 {
		batch.Entries = append(batch.Entries, &pb.PutRequest{Key: fmt.Sprintf("k%d", i), Value: []byte("12345678")})
	}
	if _, err := a.store.BatchPut(ctx(t), batch); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(a.m.Peer(b.addr).Errors) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a's replication to b never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b.st.Len() != 0 || testutil.ToFloat64(a.m.Peer(b.addr).Backlog) != 10 {
		t.Errorf("b has %d entries, a's backlog %v", b.st.Len(), testutil.ToFloat64(a.m.Peer(b.addr).Backlog))
	}
}
