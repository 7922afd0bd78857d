package grpcapi

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mapquake/mapquake/go_targets/internal/node"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// rawCodec sends and receives wire bytes as they are: a client that can send
// what proto.Marshal refuses (a string field of invalid UTF-8).
type rawCodec struct{}

type raw struct{ b []byte }

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	return v.(*raw).b, nil
}
func (rawCodec) Unmarshal(data []byte, v any) error {
	v.(*raw).b = append([]byte(nil), data...)
	return nil
}

func keyField(num protowire.Number, key string) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendString(b, key)
}

func TestInvalidUTF8KeyIsInvalidArgument(t *testing.T) {
	tg := startTarget(t, "mutexmap", "[]byte")
	conn, err := grpc.NewClient(tg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bad := "k\xff\xfe"
	put := append(keyField(1, bad), protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("v"))...)
	goodPut := append(keyField(1, "fine"), protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("v"))...)
	batch := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), goodPut)
	batch = protowire.AppendBytes(protowire.AppendTag(batch, 1, protowire.BytesType), put)
	for method, req := range map[string][]byte{
		"Put":      put,
		"Get":      keyField(1, bad),
		"Delete":   keyField(1, bad),
		"BatchPut": batch,
	} {
		err := conn.Invoke(ctx(t), "/mapquake.v1.MapStore/"+method, &raw{req}, &raw{})
		if code := status.Code(err); code != codes.InvalidArgument {
			t.Errorf("%s with an invalid UTF-8 key: %v, want InvalidArgument", method, err)
		} else if !strings.Contains(status.Convert(err).Message(), "UTF-8") {
			t.Errorf("%s: message %q does not say UTF-8", method, status.Convert(err).Message())
		}
	}
	// The batch's valid entry before the bad one was applied, with its value.
	if v, ok := tg.st.Get("fine"); !ok || string(v) != "v" {
		t.Errorf("fine = %q %v", v, ok)
	}
	// A well-formed request still decodes through the same codec.
	if err := conn.Invoke(ctx(t), "/mapquake.v1.MapStore/Put", &raw{goodPut}, &raw{}); err != nil {
		t.Errorf("good put: %v", err)
	}
}

func TestValueAndRequestLimits(t *testing.T) {
	tg := startTargetWith(t, "mutexmap", "[]byte", node.Limits{MaxValueBytes: 1000, MaxRequestBytes: 4000, MaxInflightBytes: 8000})
	value := bytes.Repeat([]byte("v"), 1001)
	if _, err := tg.store.Put(ctx(t), &pb.PutRequest{Key: "big", Value: value}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("value over the limit: %v, want InvalidArgument", err)
	}
	stream, err := tg.store.PutStream(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&pb.PutRequest{Key: "big", Value: value})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("streamed value over the limit: %v, want InvalidArgument", err)
	}
	batch := &pb.BatchPutRequest{}
	for i := range 5 {
		batch.Entries = append(batch.Entries, &pb.PutRequest{Key: fmt.Sprint(i), Value: value[:900]})
	}
	if _, err := tg.store.BatchPut(ctx(t), batch); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("request over the limit: %v, want ResourceExhausted", err)
	}
	if tg.st.Len() != 0 {
		t.Errorf("len = %d after refused writes", tg.st.Len())
	}
	batch.Entries = batch.Entries[:3]
	if _, err := tg.store.BatchPut(ctx(t), batch); err != nil {
		t.Errorf("batch within the limits: %v", err)
	}
}

func TestInflightBudget(t *testing.T) {
	tg := startTargetWith(t, "mutexmap", "[]byte", node.Limits{MaxValueBytes: 1000, MaxRequestBytes: 4000, MaxInflightBytes: 8000})
	// Other requests hold all but 100 bytes of the budget.
	release, err := tg.n.Acquire(7900)
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 500)
	_, err = tg.store.Put(ctx(t), &pb.PutRequest{Key: "k", Value: value})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), node.ErrBusy.Error()) {
		t.Errorf("put with the budget spent: %v, want ResourceExhausted", err)
	}
	stream, err := tg.store.PutStream(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&pb.PutRequest{Key: "k", Value: value})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("stream with the budget spent: %v, want ResourceExhausted", err)
	}
	if _, err := tg.store.Get(ctx(t), &pb.GetRequest{Key: "k"}); err != nil {
		t.Errorf("a small get fits: %v", err)
	}
	release()
	if _, err := tg.store.Put(ctx(t), &pb.PutRequest{Key: "k", Value: value}); err != nil {
		t.Errorf("put after release: %v", err)
	}
	if got := tg.n.InflightBytes(); got != 0 {
		t.Errorf("%d bytes still held after the calls ended", got)
	}
	if _, err := tg.n.Acquire(8001); !errors.Is(err, node.ErrBusy) {
		t.Errorf("acquire over the budget: %v", err)
	}
}
