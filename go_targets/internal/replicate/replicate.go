// Package replicate sends every write a maptarget applies for a client to
// each of its peers over gRPC (service Replica).
//
// Each peer has its own queue and one sender goroutine. The sender drains the
// queue in order, up to BatchSize ops per Replicate call, and removes ops only
// once the peer acknowledged them. A failed call is retried with capped
// exponential backoff; meanwhile the ops stay queued, so a partitioned peer
// builds a backlog: bounded queues drop (and count) what does not fit,
// unbounded queues keep everything (see queue.go for the memory cost).
//
// A partition that drops packets closes nothing: the HTTP/2 connection to the
// peer stays "ready" while TCP retransmits its unacknowledged data with an
// exponentially growing timeout, so after a long partition the old connection
// might not carry a byte until tens of seconds after the heal. The client's
// keepalive (ClientKeepalive) bounds that: grpc-go pings an idle connection
// and, with keepalive on, also sets TCP_USER_TIMEOUT on the socket, so the
// kernel drops a connection whose data stays unacknowledged for Timeout. A new
// connection then works as soon as the network does. Peers must accept the
// pings: their gRPC server needs ServerOptions.
//
// Writes a target receives through Replicate are applied locally and never
// replicated further, so there are no loops whatever the peer graph.
package replicate

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// Defaults for Config.
const (
	DefaultBatchSize  = 512
	DefaultMinBackoff = 50 * time.Millisecond
	DefaultMaxBackoff = 2 * time.Second
	DefaultRPCTimeout = 5 * time.Second
)

// ClientKeepalive is the keepalive of the replicator's peer connections: a
// ping after Time without reading from the peer, and the connection closed if
// no answer comes within Timeout. grpc-go raises a Time under 10s to 10s.
// Timeout is also the connection's TCP_USER_TIMEOUT (grpc-go sets it when
// keepalive is on): data unacknowledged for 5s ends the connection, which is
// what keeps a partition from leaving a stalled connection behind. A live
// peer acknowledges in milliseconds; 5s leaves room for one starved of CPU.
func ClientKeepalive() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}
}

// ServerOptions are what a gRPC server receiving Replicate calls needs:
// grpc-go's default enforcement (pings at most every 5 minutes, none without
// calls in flight) answers ClientKeepalive's pings with GOAWAY
// "too_many_pings". MinTime is half the client's Time, so timer jitter never
// counts as a strike.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime: ClientKeepalive().Time / 2, PermitWithoutStream: true,
	})}
}

// Config configures a Replicator.
type Config struct {
	// Origin names this replica (its gRPC address) in requests to peers.
	Origin string
	// Peers are the peers' gRPC addresses, host:port.
	Peers []string
	// Queue is the queue kind; Capacity is a bounded queue's size in ops
	// (must be > 0 for Bounded).
	Queue    QueueKind
	Capacity int
	// BatchSize caps the ops per Replicate call (default 512).
	BatchSize int
	// MaxBatchBytes caps the key and value bytes per Replicate call (0: no
	// cap), so a batch stays under the peers' request limit; a batch always
	// carries at least one op.
	MaxBatchBytes int64
	// MinBackoff and MaxBackoff bound the retry delay after a failed call
	// (defaults 50ms, 2s). RPCTimeout bounds one call (default 5s).
	MinBackoff, MaxBackoff, RPCTimeout time.Duration
	// Metrics receives the per-peer replication series; nil: not exported.
	Metrics *metrics.Metrics
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// AdminToken is sent to peers as "authorization: Bearer <token>"
	// metadata: their Replicate needs it.
	AdminToken string
	// DialOptions are added to the client connection options.
	DialOptions []grpc.DialOption
}

// Replicator fans writes out to peers. Enqueueing is safe for concurrent use.
type Replicator struct {
	peers    []*peer
	stopping chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
}

type peer struct {
	addr   string
	origin string
	q      *queue
	m      metrics.PeerMetrics
	conn   *grpc.ClientConn
	client pb.ReplicaClient
	cfg    *Config
	log    *slog.Logger
}

// New connects (lazily) to every peer and starts one sender per peer.
func New(cfg Config) (*Replicator, error) {
	if cfg.Queue == Bounded && cfg.Capacity <= 0 && len(cfg.Peers) > 0 {
		return nil, fmt.Errorf("bounded peer queue needs a capacity > 0, got %d", cfg.Capacity)
	}
	if cfg.Queue == Unbounded {
		cfg.Capacity = 0
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = DefaultRPCTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		m, err := metrics.NewMetrics(prometheus.NewRegistry(), metrics.BuildInfo{})
		if err != nil {
			return nil, err
		}
		cfg.Metrics = m
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Reconnect quickly once a partition heals: gRPC's default backoff
		// grows to 120s.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: cfg.MinBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: cfg.MaxBackoff},
			MinConnectTimeout: cfg.RPCTimeout,
		}),
		grpc.WithKeepaliveParams(ClientKeepalive()),
	}, cfg.DialOptions...)

	ctx, cancel := context.WithCancel(context.Background())
	r := &Replicator{stopping: make(chan struct{}), cancel: cancel}
	for _, addr := range cfg.Peers {
		conn, err := grpc.NewClient(addr, opts...)
		if err != nil {
			cancel()
			r.closeConns()
			return nil, fmt.Errorf("peer %q: %w", addr, err)
		}
		pm := cfg.Metrics.Peer(addr)
		r.peers = append(r.peers, &peer{
			addr: addr, origin: cfg.Origin, q: newQueue(cfg.Capacity, pm), m: pm,
			conn: conn, client: pb.NewReplicaClient(conn), cfg: &cfg,
			log: cfg.Logger.With("peer", addr),
		})
	}
	for _, p := range r.peers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			p.run(ctx, r.stopping)
		}()
	}
	return r, nil
}

// Put queues a put of key to every peer.
func (r *Replicator) Put(key string, value []byte) { r.enqueue(KindPut, key, value) }

// Delete queues a delete of key to every peer.
func (r *Replicator) Delete(key string) { r.enqueue(KindDelete, key, nil) }

func (r *Replicator) enqueue(kind Kind, key string, value []byte) {
	for _, p := range r.peers {
		p.q.push(kind, key, value)
	}
}

// PeerStatus is one peer's queue state.
type PeerStatus struct {
	Peer         string `json:"peer"`
	Backlog      int    `json:"backlog"`
	BacklogBytes int64  `json:"backlog_bytes"`
}

// Status reports every peer's backlog, in the order of Config.Peers.
func (r *Replicator) Status() []PeerStatus {
	out := make([]PeerStatus, 0, len(r.peers))
	for _, p := range r.peers {
		n, b := p.q.len()
		out = append(out, PeerStatus{Peer: p.addr, Backlog: n, BacklogBytes: b})
	}
	return out
}

// Close stops the senders. Each first tries to flush its queue (one attempt
// per batch, no retries) until ctx is done; then in-flight calls are
// cancelled and connections closed. Ops still queued are discarded.
func (r *Replicator) Close(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		close(r.stopping)
		done := make(chan struct{})
		go func() { r.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			r.cancel()
			<-done
		}
		r.cancel()
		r.closeConns()
	})
	return err
}

func (r *Replicator) closeConns() {
	for _, p := range r.peers {
		_ = p.conn.Close()
	}
}

func (p *peer) run(ctx context.Context, stopping <-chan struct{}) {
	batch := make([]op, 0, p.cfg.BatchSize)
	wait := p.cfg.MinBackoff
	failing := false
	for {
		batch = trimBatch(p.q.peek(batch[:0], p.cfg.BatchSize), p.cfg.MaxBatchBytes)
		if len(batch) == 0 {
			select {
			case <-p.q.notify:
				continue
			case <-stopping:
				return
			}
		}
		err := p.send(ctx, batch)
		if err == nil {
			p.q.pop(len(batch))
			wait = p.cfg.MinBackoff
			if failing {
				failing = false
				n, _ := p.q.len()
				p.log.Info("peer reachable again", "backlog", n)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		p.m.Errors.Inc()
		if !failing {
			failing = true
			n, _ := p.q.len()
			p.log.Warn("replication failing, keeping ops queued", "err", err, "backlog", n)
		}
		select {
		case <-stopping: // shutting down: no retries
			return
		default:
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stopping:
			t.Stop()
		}
		wait = min(2*wait, p.cfg.MaxBackoff)
	}
}

// trimBatch keeps the longest prefix of batch (at least one op) whose ops
// carry at most maxBytes (0: all of it).
func trimBatch(batch []op, maxBytes int64) []op {
	if maxBytes <= 0 {
		return batch
	}
	var total int64
	for i := range batch {
		total += int64(len(batch[i].buf)) + opOverhead
		if total > maxBytes && i > 0 {
			return batch[:i]
		}
	}
	return batch
}

// opOverhead bounds the protobuf framing of one ReplicateOp.
const opOverhead = 32

func (p *peer) send(ctx context.Context, batch []op) error {
	ops := make([]*pb.ReplicateOp, len(batch))
	for i := range batch {
		o := &batch[i]
		ops[i] = &pb.ReplicateOp{Kind: pb.ReplicateOp_Kind(o.kind), Key: o.key(), Value: o.value()}
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RPCTimeout)
	defer cancel()
	if p.cfg.AdminToken != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.cfg.AdminToken)
	}
	resp, err := p.client.Replicate(ctx, &pb.ReplicateRequest{Origin: p.origin, Ops: ops})
	if err != nil {
		return err
	}
	if resp.GetApplied() != uint64(len(ops)) {
		p.log.Warn("peer applied fewer ops than sent", "sent", len(ops), "applied", resp.GetApplied())
	}
	return nil
}
