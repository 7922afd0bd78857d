// Package metrics holds every Prometheus metric a maptarget exports, built
// from an injected Registerer (no globals).
//
// Exported series:
//
//	go_* (Go collector with the GC, memory and scheduler runtime metrics,
//	      so go_gc_heap_live_bytes exists), process_*
//	mapquake_build_info{go_version,store,key_type,value_type}   1
//	mapquake_ops_total{op,protocol,result}                      requests handled
//	mapquake_request_duration_seconds{op,protocol}              server-side latency
//	mapquake_writes_total                                       map writes applied
//	mapquake_replication_backlog{peer}                          ops queued for a peer
//	mapquake_replication_backlog_bytes{peer}                    their logical size
//	mapquake_replication_dropped_total{peer}                    ops dropped (bounded queue full)
//	mapquake_replication_sent_total{peer}                       ops the peer acknowledged
//	mapquake_replication_errors_total{peer}                     failed Replicate calls
//	mapquake_store_entries, mapquake_store_high_water_entries,
//	mapquake_store_info{go_type,key_type,value_type}            see RegisterStore
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Op is the operation label of mapquake_ops_total.
type Op int

// The operations a maptarget serves. One batch_put or put_stream request is
// one op; each of its entries is one map write (mapquake_writes_total).
const (
	OpPut Op = iota
	OpGet
	OpDelete
	OpBatchPut
	OpPutStream
	OpReplicate
	numOps
)

var opNames = [numOps]string{"put", "get", "delete", "batch_put", "put_stream", "replicate"}

func (o Op) String() string { return opNames[o] }

// Protocol is the protocol label.
type Protocol int

// Protocols.
const (
	HTTP Protocol = iota
	GRPC
	numProtocols
)

var protocolNames = [numProtocols]string{"http", "grpc"}

func (p Protocol) String() string { return protocolNames[p] }

// Result is the result label: ok, miss (get or delete of an absent key) or
// error (bad request or store failure).
type Result int

// Results.
const (
	OK Result = iota
	Miss
	Error
	numResults
)

var resultNames = [numResults]string{"ok", "miss", "error"}

func (r Result) String() string { return resultNames[r] }

// served lists the (op, protocol) pairs that exist; only these get series.
var served = [numOps][numProtocols]bool{
	OpPut:       {HTTP: true, GRPC: true},
	OpGet:       {HTTP: true, GRPC: true},
	OpDelete:    {HTTP: true, GRPC: true},
	OpBatchPut:  {GRPC: true},
	OpPutStream: {GRPC: true},
	OpReplicate: {GRPC: true},
}

// DurationBuckets are the request latency buckets: 1µs doubling to ~1.05s.
var DurationBuckets = prometheus.ExponentialBuckets(1e-6, 2, 21)

// BuildInfo labels mapquake_build_info.
type BuildInfo struct {
	GoVersion string
	Store     string
	KeyType   string
	ValueType string
}

// Metrics are the maptarget's own metrics. Methods are safe for concurrent
// use; the hot path (Observe, AddWrites) does no label lookups.
type Metrics struct {
	ops      [numOps][numProtocols][numResults]prometheus.Counter
	duration [numOps][numProtocols]prometheus.Observer
	writes   prometheus.Counter

	backlog      *prometheus.GaugeVec
	backlogBytes *prometheus.GaugeVec
	dropped      *prometheus.CounterVec
	sent         *prometheus.CounterVec
	repErrors    *prometheus.CounterVec
}

// NewMetrics registers the Go and process collectors, build info, op,
// latency, write and replication metrics with reg. Every op series starts at
// zero so rate() works from the first scrape.
func NewMetrics(reg prometheus.Registerer, info BuildInfo) (*Metrics, error) {
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "mapquake_build_info",
		Help: "Always 1; labels describe the binary and the store it serves.",
		ConstLabels: prometheus.Labels{
			"go_version": info.GoVersion,
			"store":      info.Store,
			"key_type":   info.KeyType,
			"value_type": info.ValueType,
		},
	})
	buildInfo.Set(1)
	ops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mapquake_ops_total",
		Help: "Requests handled by op, protocol and result (ok, miss, error). A batch is one op.",
	}, []string{"op", "protocol", "result"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mapquake_request_duration_seconds",
		Help:    "Server-side request latency from decoded request to answer, by op and protocol.",
		Buckets: DurationBuckets,
	}, []string{"op", "protocol"})
	m := &Metrics{
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mapquake_writes_total",
			Help: "Map writes applied (puts and deletes, each batch entry and each replicated op counted).",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapquake_replication_backlog",
			Help: "Ops queued for a peer and not yet acknowledged.",
		}, []string{"peer"}),
		backlogBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapquake_replication_backlog_bytes",
			Help: "Logical size of the queued ops: per op the slot size plus key and value bytes.",
		}, []string{"peer"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_dropped_total",
			Help: "Ops dropped because the peer's bounded queue was full.",
		}, []string{"peer"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_sent_total",
			Help: "Ops the peer acknowledged.",
		}, []string{"peer"}),
		repErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_errors_total",
			Help: "Replicate calls to the peer that failed (each is retried).",
		}, []string{"peer"}),
	}
	for op := range numOps {
		for p := range numProtocols {
			if !served[op][p] {
				continue
			}
			for r := range numResults {
				m.ops[op][p][r] = ops.WithLabelValues(op.String(), p.String(), r.String())
			}
			m.duration[op][p] = duration.WithLabelValues(op.String(), p.String())
		}
	}
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.MetricsGC, collectors.MetricsMemory, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, ops, duration, m.writes,
		m.backlog, m.backlogBytes, m.dropped, m.sent, m.repErrors,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe counts one request and records its latency. It panics for an
// (op, protocol) pair that is not served.
func (m *Metrics) Observe(op Op, p Protocol, r Result, d time.Duration) {
	m.ops[op][p][r].Inc()
	m.duration[op][p].Observe(d.Seconds())
}

// AddWrites counts n applied map writes.
func (m *Metrics) AddWrites(n int) {
	if n > 0 {
		m.writes.Add(float64(n))
	}
}

// PeerMetrics are one peer's replication series.
type PeerMetrics struct {
	Backlog      prometheus.Gauge
	BacklogBytes prometheus.Gauge
	Dropped      prometheus.Counter
	Sent         prometheus.Counter
	Errors       prometheus.Counter
}

// Peer returns (and creates at zero) the replication series of peer.
func (m *Metrics) Peer(peer string) PeerMetrics {
	return PeerMetrics{
		Backlog:      m.backlog.WithLabelValues(peer),
		BacklogBytes: m.backlogBytes.WithLabelValues(peer),
		Dropped:      m.dropped.WithLabelValues(peer),
		Sent:         m.sent.WithLabelValues(peer),
		Errors:       m.repErrors.WithLabelValues(peer),
	}
}
