package grpcapi

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mapquake/mapquake/go_targets/internal/node"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// ServerOptions are the options a server serving n needs: the node's request
// limit as the largest message it receives, a codec that lets a key of
// invalid UTF-8 reach the handlers (which answer InvalidArgument, as HTTP
// answers 400, instead of gRPC's Internal decode error), and interceptors
// that hold each message's bytes in the node's in-flight budget while it is
// handled (ResourceExhausted when the budget is spent). Replicate and
// Stats(gc=true) need the node's admin token as "authorization: Bearer
// <token>" metadata: Unauthenticated without it, PermissionDenied when the
// node has none.
func ServerOptions(n *node.Node) []grpc.ServerOption {
	g := guard{n: n}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(n.Limits().MaxRequestBytes)),
		grpc.ForceServerCodecV2(newLenientCodec()),
		grpc.ChainUnaryInterceptor(g.unary),
		grpc.ChainStreamInterceptor(g.stream),
	}
}

type guard struct{ n *node.Node }

func (g guard) acquire(msg any) (release func(), err error) {
	m, ok := msg.(proto.Message)
	if !ok {
		return func() {}, nil
	}
	release, err = g.n.Acquire(int64(proto.Size(m)))
	if err != nil {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	}
	return release, nil
}

// adminOnly reports whether a call needs the admin token.
func adminOnly(method string, req any) bool {
	switch method {
	case pb.Replica_Replicate_FullMethodName:
		return true
	case pb.MapStore_Stats_FullMethodName:
		r, ok := req.(*pb.StatsRequest)
		return !ok || r.GetGc()
	}
	return false
}

func (g guard) authorize(ctx context.Context) error {
	var auth string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
	}
	err := g.n.CheckAdmin(auth)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, node.ErrAdminDisabled):
		return status.Error(codes.PermissionDenied, err.Error())
	default:
		return status.Error(codes.Unauthenticated, err.Error())
	}
}

func (g guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if adminOnly(info.FullMethod, req) {
		if err := g.authorize(ctx); err != nil {
			return nil, err
		}
	}
	release, err := g.acquire(req)
	if err != nil {
		return nil, err
	}
	defer release()
	return handler(ctx, req)
}

func (g guard) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	gs := &guardedStream{ServerStream: ss, g: g}
	defer gs.releaseHeld()
	return handler(srv, gs)
}

// guardedStream holds the budget for the message last received, until the
// next one is asked for or the call ends.
type guardedStream struct {
	grpc.ServerStream
	g       guard
	release func()
}

func (s *guardedStream) releaseHeld() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

func (s *guardedStream) RecvMsg(m any) error {
	s.releaseHeld()
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	release, err := s.g.acquire(m)
	if err != nil {
		return err
	}
	s.release = release
	return nil
}

// lenientCodec is grpc's proto codec, except that a string field of invalid
// UTF-8 is decoded as is instead of failing the whole message: the handler's
// key validation (the same as HTTP's) then refuses it with InvalidArgument.
// Valid messages take grpc's own path (pooled buffers) unchanged.
type lenientCodec struct{ encoding.CodecV2 }

func newLenientCodec() lenientCodec { return lenientCodec{encoding.GetCodecV2(grpcproto.Name)} }

func (c lenientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	m, ok := v.(proto.Message)
	if err == nil || !ok || !strings.Contains(err.Error(), "invalid UTF-8") {
		return err
	}
	proto.Reset(m)
	return unmarshalLenient(data.Materialize(), m.ProtoReflect())
}

// unmarshalLenient decodes b into m field by field: string fields (and
// strings inside message fields) are set without UTF-8 validation, every
// other field goes through proto.Unmarshal.
func unmarshalLenient(b []byte, m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vlen := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vlen < 0 {
			return protowire.ParseError(vlen)
		}
		field := b[:n+vlen]
		b = b[n+vlen:]
		fd := fields.ByNumber(num)
		if fd == nil || typ != protowire.BytesType || fd.IsMap() ||
			(fd.Kind() != protoreflect.StringKind && fd.Kind() != protoreflect.MessageKind) {
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(field, m.Interface()); err != nil {
				return err
			}
			continue
		}
		v, _ := protowire.ConsumeBytes(field[n:])
		switch {
		case fd.Kind() == protoreflect.StringKind && fd.IsList():
			m.Mutable(fd).List().Append(protoreflect.ValueOfString(string(v)))
		case fd.Kind() == protoreflect.StringKind:
			m.Set(fd, protoreflect.ValueOfString(string(v)))
		case fd.IsList():
			list := m.Mutable(fd).List()
			elem := list.NewElement()
			if err := unmarshalLenient(v, elem.Message()); err != nil {
				return err
			}
			list.Append(elem)
		default:
			if err := unmarshalLenient(v, m.Mutable(fd).Message()); err != nil {
				return err
			}
		}
	}
	return nil
}
