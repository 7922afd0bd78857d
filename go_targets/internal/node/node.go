// Package node is one maptarget replica: its store, its metrics and its
// replication to peers. The HTTP and gRPC APIs are thin adapters over it.
package node

import (
	"errors"
	"fmt"
	"github.com/mapquake/mapquake/go_targets/internal/conntrack"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sync"

	mqmetrics "github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/replicate"
	"github.com/mapquake/mapquake/go_targets/internal/store"
)

// MaxKeyBytes is the longest key either API accepts.
const MaxKeyBytes = 1024

// ErrBadKey is returned for an empty or too long key.
var ErrBadKey = errors.New("bad key")

// Replicator receives every write a client makes (never the replicated ones).
type Replicator interface {
	Put(key string, value []byte)
	Delete(key string)
	Status() []replicate.PeerStatus
}

// Node applies writes to the store, counts them and hands client writes to
// the replicator. Safe for concurrent use as far as the store is.
type Node struct {
	st   store.Store
	m    *mqmetrics.Metrics
	repl Replicator
	info store.Info
	// HTTPConns and GRPCConns count the servers' open client connections
	// (wired by the servers' ConnState hook and stats handler).
	HTTPConns conntrack.Counter
	GRPCConns conntrack.Counter
	// measuring is held for writing while Stats(gc=true) collects and reads
	// the heap, and for reading by every /metrics scrape (QuietDuring): a
	// scrape's buffers (hundreds of KiB with gzip) would otherwise be live in
	// the very sample that is meant to show only the store.
	measuring sync.RWMutex
	limits    Limits
	inflight  inflight
	// adminToken is the SHA-256 of the admin token; nil: admin disabled.
	adminToken []byte
}

// QuietDuring wraps h so it never runs while an exact heap sample is taken.
func (n *Node) QuietDuring(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.measuring.RLock()
		defer n.measuring.RUnlock()
		h.ServeHTTP(w, r)
	})
}

// New builds a node; repl may be nil (no peers).
func New(st store.Store, m *mqmetrics.Metrics, repl Replicator) *Node {
	n := &Node{st: st, m: m, repl: repl, info: st.Info()}
	n.SetLimits(Limits{})
	return n
}

// Metrics returns the node's metrics, for the API adapters to observe requests.
func (n *Node) Metrics() *mqmetrics.Metrics { return n.m }

// Info describes the store.
func (n *Node) Info() store.Info { return n.info }

// Put stores a client write and queues it for every peer. It fails with
// ErrValueTooLarge for a value over the limit and store.ErrBadValue
// (wrapped) if the value does not decode.
func (n *Node) Put(key string, value []byte) (created bool, err error) {
	if err := n.checkValue(value); err != nil {
		return false, err
	}
	created, err = n.st.Put(key, value)
	if err != nil {
		return false, err
	}
	n.m.AddWrites(1)
	if n.repl != nil {
		n.repl.Put(key, value)
	}
	return created, nil
}

// Get reads a key.
func (n *Node) Get(key string) ([]byte, bool) { return n.st.Get(key) }

// Delete removes a key for a client and queues the delete for every peer,
// whether or not the key was present (peers may hold it).
func (n *Node) Delete(key string) (existed bool) {
	existed = n.st.Delete(key)
	n.m.AddWrites(1)
	if n.repl != nil {
		n.repl.Delete(key)
	}
	return existed
}

// ApplyReplicated applies a write a peer sent. It is never replicated again.
func (n *Node) ApplyReplicated(kind replicate.Kind, key string, value []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	switch kind {
	case replicate.KindPut:
		if err := n.checkValue(value); err != nil {
			return err
		}
		if _, err := n.st.Put(key, value); err != nil {
			return err
		}
	case replicate.KindDelete:
		n.st.Delete(key)
	default:
		return fmt.Errorf("unknown replicated op kind %d", kind)
	}
	n.m.AddWrites(1)
	return nil
}

// Stats is the process heap and the store's size: what POST /admin/gc and
// the gRPC Stats call answer.
type Stats struct {
	// GC tells whether runtime.GC() ran first (twice, to empty sync.Pool victim
	// caches); only then is LiveBytes exact.
	GC bool `json:"gc"`
	// LiveBytes is runtime.MemStats.HeapAlloc.
	LiveBytes uint64 `json:"live_bytes"`
	// GCHeapLiveBytes is runtime/metrics /gc/heap/live:bytes (what
	// go_gc_heap_live_bytes exports): bytes marked live by the last GC.
	GCHeapLiveBytes uint64 `json:"gc_heap_live_bytes"`
	HeapObjects     uint64 `json:"heap_objects"`
	// TotalAllocBytes is runtime.MemStats.TotalAlloc (cumulative).
	TotalAllocBytes uint64 `json:"total_alloc_bytes"`
	NumGC           uint32 `json:"num_gc"`
	Goroutines      int    `json:"goroutines"`
	Entries         int    `json:"entries"`
	HighWater       int    `json:"high_water"`
	GoVersion       string `json:"go_version"`
	Store           string `json:"store"`
	KeyType         string `json:"key_type"`
	ValueType       string `json:"value_type"`
	GoType          string `json:"go_type"`
	// HTTPConnections and GRPCConnections are the client connections open
	// now; each holds transport buffers, so an exact heap comparison waits
	// until the load's connections are gone.
	HTTPConnections int64 `json:"http_connections"`
	GRPCConnections int64 `json:"grpc_connections"`
	// Replication is each peer's backlog; absent without peers.
	Replication []replicate.PeerStatus `json:"replication,omitempty"`
}

// Stats reads the heap, after runtime.GC() when gc is set.
//
// The GC runs twice: objects parked in a sync.Pool (gRPC's and net/http's
// buffers) survive the first cycle in the pool's victim cache and are freed
// only by the second, so one cycle would count idle buffers as live.
func (n *Node) Stats(gc bool) Stats {
	if gc {
		n.measuring.Lock()
		defer n.measuring.Unlock()
		runtime.GC()
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	s := Stats{
		GC:              gc,
		LiveBytes:       ms.HeapAlloc,
		HeapObjects:     ms.HeapObjects,
		TotalAllocBytes: ms.TotalAlloc,
		NumGC:           ms.NumGC,
		Goroutines:      runtime.NumGoroutine(),
		Entries:         n.st.Len(),
		HighWater:       n.st.HighWater(),
		GoVersion:       runtime.Version(),
		Store:           n.info.Store,
		KeyType:         n.info.KeyType,
		ValueType:       n.info.ValueType,
		GoType:          n.info.GoType,
		HTTPConnections: n.HTTPConns.Open(),
		GRPCConnections: n.GRPCConns.Open(),
	}
	if live[0].Value.Kind() == metrics.KindUint64 {
		s.GCHeapLiveBytes = live[0].Value.Uint64()
	}
	if n.repl != nil {
		s.Replication = n.repl.Status()
	}
	return s
}
