package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// replicaOp is one accepted PUT waiting to be sent to a peer.
type replicaOp struct {
	seq  uint64 // per queue, to recognise the op that was sent
	sku  string
	item Item // Updated is not sent: the peer stamps its own
}

// peerQueue is the bounded queue of writes for one peer. It is a ring that
// grows by doubling up to bound ops and is released whenever it drains, so an
// idle queue holds no memory. When full, the oldest op is dropped (and
// counted): the newest write of an item matters more than an old one.
type peerQueue struct {
	peer  string
	bound int // most ops held

	mu      sync.Mutex
	buf     []replicaOp
	head, n int
	nextSeq uint64

	wake chan struct{} // one token: "there is something to send"

	backlog prometheus.Gauge
	dropped prometheus.Counter
	sent    prometheus.Counter
	errors  prometheus.Counter
}

// replicationMetrics are the per-peer series, labelled {peer}.
type replicationMetrics struct {
	backlog *prometheus.GaugeVec
	dropped *prometheus.CounterVec
	sent    *prometheus.CounterVec
	errors  *prometheus.CounterVec
}

func newReplicationMetrics(reg prometheus.Registerer) (*replicationMetrics, error) {
	m := &replicationMetrics{
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mapquake_replication_backlog",
			Help: "Writes queued for the peer and not yet acknowledged.",
		}, []string{"peer"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_dropped_total",
			Help: "Writes dropped because the peer's queue was full (the oldest queued write goes).",
		}, []string{"peer"}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_sent_total",
			Help: "Writes the peer acknowledged.",
		}, []string{"peer"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mapquake_replication_errors_total",
			Help: "Failed attempts to send a write to the peer.",
		}, []string{"peer"}),
	}
	for _, c := range []prometheus.Collector{m.backlog, m.dropped, m.sent, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func newPeerQueue(peer string, bound int, m *replicationMetrics) *peerQueue {
	q := &peerQueue{
		peer:    peer,
		bound:   bound,
		wake:    make(chan struct{}, 1),
		backlog: m.backlog.WithLabelValues(peer),
		dropped: m.dropped.WithLabelValues(peer),
		sent:    m.sent.WithLabelValues(peer),
		errors:  m.errors.WithLabelValues(peer),
	}
	q.backlog.Set(0)
	return q
}

// push queues a write, dropping the oldest queued one when full.
func (q *peerQueue) push(sku string, it Item) {
	q.mu.Lock()
	if q.n == q.bound {
		q.buf[q.head] = replicaOp{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.dropped.Inc()
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	q.nextSeq++
	q.buf[(q.head+q.n)%len(q.buf)] = replicaOp{seq: q.nextSeq, sku: sku, item: it}
	q.n++
	q.backlog.Set(float64(q.n))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// grow doubles the ring (at least 16, at most bound), keeping the order.
// Called with mu held.
func (q *peerQueue) grow() {
	size := min(max(16, 2*len(q.buf)), q.bound)
	buf := make([]replicaOp, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

// front returns the oldest queued op.
func (q *peerQueue) front() (replicaOp, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return replicaOp{}, false
	}
	return q.buf[q.head], true
}

// done removes the op with sequence number seq if it is still the oldest
// (it may have been dropped while it was being sent).
func (q *peerQueue) done(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 || q.buf[q.head].seq != seq {
		return
	}
	q.buf[q.head] = replicaOp{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	if q.n == 0 {
		q.buf, q.head = nil, 0 // an empty queue holds no memory
	}
	q.backlog.Set(float64(q.n))
}

// len is the backlog.
func (q *peerQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Retry backoff after a failed send.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// run sends the queue's ops one by one, in order, until ctx is done. An op
// leaves the queue only once the peer acknowledged it (or refused it with a
// 4xx, which no retry would change); network errors and 5xx are retried
// with backoff, so during a partition the backlog grows to the bound and
// drains once the peer is reachable again.
func (q *peerQueue) run(ctx context.Context, client *http.Client, timeout time.Duration, log *slog.Logger) {
	backoff := minBackoff
	failing := false
	for {
		op, ok := q.front()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		permanent, err := q.send(ctx, client, timeout, op)
		if ctx.Err() != nil {
			return
		}
		if err == nil || permanent {
			q.done(op.seq)
		}
		if err == nil {
			q.sent.Inc()
			if failing {
				log.Info("peer reachable again", "peer", q.peer, "backlog", q.len())
				failing = false
			}
			backoff = minBackoff
			continue
		}
		q.errors.Inc()
		if permanent {
			log.Warn("peer refused a write; dropped", "peer", q.peer, "sku", op.sku, "err", err)
			continue
		}
		if !failing {
			log.Warn("peer unreachable; queueing", "peer", q.peer, "err", err)
			failing = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// send POSTs one op to the peer's /replicate/items/{sku}. permanent is set
// for a 4xx answer.
func (q *peerQueue) send(ctx context.Context, client *http.Client, timeout time.Duration, op replicaOp) (permanent bool, err error) {
	body, err := json.Marshal(itemBody{Name: op.item.Name, Qty: op.item.Qty, PriceCents: op.item.PriceCents})
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target := "http://" + q.peer + "/replicate/items/" + url.PathEscape(op.sku)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // lets the connection be reused
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode/100 == 4:
		return true, fmt.Errorf("peer answered %s", resp.Status)
	default:
		return false, fmt.Errorf("peer answered %s", resp.Status)
	}
}
