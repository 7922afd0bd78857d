// Package grpcapi serves a node over gRPC: the MapStore service for clients
// and the Replica service for peers (proto/mapquake/v1/store.proto).
//
// A bad key or a value the store cannot decode is InvalidArgument. Every
// request is counted in mapquake_ops_total and timed in
// mapquake_request_duration_seconds; a batch or a stream is one op there
// and one map write per entry in mapquake_writes_total.
package grpcapi

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
	"github.com/mapquake/mapquake/go_targets/internal/replicate"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// Register adds the MapStore and Replica services of n to s.
func Register(s grpc.ServiceRegistrar, n *node.Node) {
	srv := &server{n: n, m: n.Metrics()}
	pb.RegisterMapStoreServer(s, mapStore{server: srv})
	pb.RegisterReplicaServer(s, replica{server: srv})
}

type server struct {
	n *node.Node
	m *metrics.Metrics
}

type mapStore struct {
	*server
	pb.UnimplementedMapStoreServer
}

type replica struct {
	*server
	pb.UnimplementedReplicaServer
}

func (s *server) observe(op metrics.Op, start time.Time, err error) {
	r := metrics.OK
	if err != nil {
		r = metrics.Error
	}
	s.m.Observe(op, metrics.GRPC, r, time.Since(start))
}

func invalid(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

func (s *server) put(key string, value []byte) error {
	if err := node.ValidateKey(key); err != nil {
		return invalid(err)
	}
	if _, err := s.n.Put(key, value); err != nil {
		return invalid(err)
	}
	return nil
}

func (s mapStore) Put(_ context.Context, req *pb.PutRequest) (_ *pb.PutResponse, err error) {
	start := time.Now()
	defer func() { s.observe(metrics.OpPut, start, err) }()
	if err := s.put(req.GetKey(), req.GetValue()); err != nil {
		return nil, err
	}
	return &pb.PutResponse{}, nil
}

func (s mapStore) Get(_ context.Context, req *pb.GetRequest) (*pb.GetResponse, error) {
	start := time.Now()
	if err := node.ValidateKey(req.GetKey()); err != nil {
		s.observe(metrics.OpGet, start, err)
		return nil, invalid(err)
	}
	v, ok := s.n.Get(req.GetKey())
	if !ok {
		s.m.Observe(metrics.OpGet, metrics.GRPC, metrics.Miss, time.Since(start))
		return &pb.GetResponse{}, nil
	}
	s.observe(metrics.OpGet, start, nil)
	return &pb.GetResponse{Found: true, Value: v}, nil
}

func (s mapStore) Delete(_ context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	start := time.Now()
	if err := node.ValidateKey(req.GetKey()); err != nil {
		s.observe(metrics.OpDelete, start, err)
		return nil, invalid(err)
	}
	existed := s.n.Delete(req.GetKey())
	if !existed {
		s.m.Observe(metrics.OpDelete, metrics.GRPC, metrics.Miss, time.Since(start))
	} else {
		s.observe(metrics.OpDelete, start, nil)
	}
	return &pb.DeleteResponse{Existed: existed}, nil
}

// BatchPut applies the entries in order; on the first bad entry it stops and
// answers InvalidArgument (the entries before it stay applied).
func (s mapStore) BatchPut(_ context.Context, req *pb.BatchPutRequest) (_ *pb.BatchPutResponse, err error) {
	start := time.Now()
	defer func() { s.observe(metrics.OpBatchPut, start, err) }()
	for _, e := range req.GetEntries() {
		if err := s.put(e.GetKey(), e.GetValue()); err != nil {
			return nil, err
		}
	}
	return &pb.BatchPutResponse{Written: uint64(len(req.GetEntries()))}, nil
}

// PutStream applies every streamed entry as it arrives and answers the count
// when the client closes its side. It is timed from the first message.
func (s mapStore) PutStream(stream grpc.ClientStreamingServer[pb.PutRequest, pb.BatchPutResponse]) (err error) {
	start := time.Now()
	defer func() { s.observe(metrics.OpPutStream, start, err) }()
	var written uint64
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&pb.BatchPutResponse{Written: written})
		}
		if err != nil {
			return err
		}
		if written == 0 {
			start = time.Now()
		}
		if err := s.put(req.GetKey(), req.GetValue()); err != nil {
			return err
		}
		written++
	}
}

func (s mapStore) Stats(_ context.Context, req *pb.StatsRequest) (*pb.StatsResponse, error) {
	st := s.n.Stats(req.GetGc())
	return &pb.StatsResponse{
		Store:           st.Store,
		Entries:         uint64(st.Entries),
		HighWater:       uint64(st.HighWater),
		LiveBytes:       st.LiveBytes,
		HeapObjects:     st.HeapObjects,
		Goroutines:      uint64(st.Goroutines),
		TotalAllocBytes: st.TotalAllocBytes,
		GoVersion:       st.GoVersion,
		KeyType:         st.KeyType,
		ValueType:       st.ValueType,
		GoType:          st.GoType,
		NumGc:           st.NumGC,
		HttpConnections: uint64(max(st.HTTPConnections, 0)),
		GrpcConnections: uint64(max(st.GRPCConnections, 0)),
	}, nil
}

// Replicate applies a peer's batch locally without replicating it further.
// Ops that fail (bad key, undecodable value, unknown kind) are skipped and
// counted as errors; applied says how many succeeded, so one bad op cannot
// wedge the sender's queue.
func (s replica) Replicate(_ context.Context, req *pb.ReplicateRequest) (*pb.ReplicateResponse, error) {
	start := time.Now()
	var applied uint64
	var firstErr error
	for _, o := range req.GetOps() {
		if err := s.n.ApplyReplicated(replicate.Kind(o.GetKind()), o.GetKey(), o.GetValue()); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		applied++
	}
	s.observe(metrics.OpReplicate, start, firstErr)
	return &pb.ReplicateResponse{Applied: applied}, nil
}
