// Package conntrack counts a server's open client connections, for HTTP
// (http.Server.ConnState) and gRPC (a stats.Handler).
//
// Each open connection holds transport buffers (tens of KiB for gRPC), so a
// heap sample taken while a client's connection is still closing is off by
// that much. The controller reads these counts from /admin/gc and takes its
// final heap sample only once the load's connections are gone.
package conntrack

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"

	"google.golang.org/grpc/stats"
)

// Counter is the number of open connections of one server. The zero value is ready.
type Counter struct {
	open atomic.Int64
}

// Open returns the number of connections open now.
func (c *Counter) Open() int64 { return c.open.Load() }

// HTTPConnState is an http.Server.ConnState hook.
func (c *Counter) HTTPConnState(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		c.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.open.Add(-1)
	}
}

// GRPCHandler returns a grpc stats.Handler that counts connections in c.
func (c *Counter) GRPCHandler() stats.Handler { return grpcHandler{c} }

type grpcHandler struct{ c *Counter }

func (h grpcHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (h grpcHandler) HandleRPC(context.Context, stats.RPCStats)                         {}
func (h grpcHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (h grpcHandler) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		h.c.open.Add(1)
	case *stats.ConnEnd:
		h.c.open.Add(-1)
	}
}
