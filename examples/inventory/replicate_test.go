package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestQueue(t *testing.T, bound int) *peerQueue {
	t.Helper()
	m, err := newReplicationMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return newPeerQueue("peer:1", bound, m)
}

func TestQueueBoundDropsOldest(t *testing.T) {
	q := newTestQueue(t, 3)
	for n := 1; n <= 5; n++ {
		q.push(skuN(n), item("x", int64(n)))
	}
	if q.len() != 3 || testutil.ToFloat64(q.backlog) != 3 || testutil.ToFloat64(q.dropped) != 2 {
		t.Fatalf("after 5 pushes into 3: len %d, backlog %v, dropped %v; want 3, 3, 2",
			q.len(), testutil.ToFloat64(q.backlog), testutil.ToFloat64(q.dropped))
	}
	for want := 3; want <= 5; want++ {
		op, ok := q.front()
		if !ok || op.sku != skuN(want) {
			t.Fatalf("front = %s, %v; want %s (the oldest two were dropped)", op.sku, ok, skuN(want))
		}
		q.done(op.seq)
	}
	if _, ok := q.front(); ok || q.buf != nil || testutil.ToFloat64(q.backlog) != 0 {
		t.Errorf("drained queue: front ok=%v, buf %v, backlog %v; want empty, released, 0", ok, q.buf, testutil.ToFloat64(q.backlog))
	}
}

// TestQueueDoneAfterDrop: an op dropped while it was being sent is not
// confused with the op that took its place.
func TestQueueDoneAfterDrop(t *testing.T) {
	q := newTestQueue(t, 2)
	q.push("a", Item{})
	q.push("b", Item{})
	sending, _ := q.front()
	q.push("c", Item{}) // drops SKU a, the op being sent
	q.done(sending.seq)
	if op, _ := q.front(); q.len() != 2 || op.sku != "b" {
		t.Errorf("len %d, front SKU %q; want 2 ops starting at SKU b", q.len(), op.sku)
	}
}

func TestQueueGrowsInOrder(t *testing.T) {
	q := newTestQueue(t, 100)
	next, want := 0, 0
	for round := range 10 {
		for range 7 + round {
			q.push(skuN(next), Item{})
			next++
		}
		for range 5 {
			op, _ := q.front()
			if op.sku != skuN(want) {
				t.Fatalf("front SKU %s, want %s", op.sku, skuN(want))
			}
			q.done(op.seq)
			want++
		}
	}
	if q.len() != next-want || len(q.buf) > 100 {
		t.Errorf("len %d (want %d), ring of %d (bound 100)", q.len(), next-want, len(q.buf))
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replica is a service serving on a real listener, its senders running.
type replica struct {
	s   *service
	srv *httptest.Server
}

func startReplica(t *testing.T, ln net.Listener, cfg config) *replica {
	t.Helper()
	s, h := newTestService(t, cfg)
	srv := httptest.NewUnstartedServer(h)
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	wait := s.startReplication(ctx)
	t.Cleanup(func() { cancel(); wait(); srv.Close() })
	return &replica{s: s, srv: srv}
}

func (r *replica) addr() string { return r.srv.Listener.Addr().String() }

func TestReplicationSendsPutsButNeverForwardsReplicatedOnes(t *testing.T) {
	var cReceived atomic.Int64
	c := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		cReceived.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer c.Close()
	cfg := testConfig()
	cfg.peers = []string{c.Listener.Addr().String()}
	b := startReplica(t, nil, cfg) // b's own peer is c
	cfg.peers = []string{b.addr()}
	a := startReplica(t, nil, cfg)

	do(t, a.s, http.MethodPut, "/items/sku-000042", `{"name":"hinge","qty":9,"price_cents":350}`)
	waitFor(t, "the write to reach b", func() bool { _, ok := b.s.store.Get("sku-000042"); return ok })
	got, _ := b.s.store.Get("sku-000042")
	if got.Name != "hinge" || got.Qty != 9 || got.PriceCents != 350 {
		t.Errorf("b holds %+v", got)
	}
	waitFor(t, "a's backlog to drain", func() bool { return a.s.peers[0].len() == 0 })
	if n := testutil.ToFloat64(a.s.peers[0].sent); n != 1 {
		t.Errorf("a sent %v writes, want 1", n)
	}
	time.Sleep(100 * time.Millisecond) // what b would forward, it would have by now
	if n := cReceived.Load(); n != 0 || b.s.peers[0].len() != 0 {
		t.Errorf("b forwarded a replicated write: c received %d, b's backlog %d", n, b.s.peers[0].len())
	}
}

// TestPartitionFillsQueueThenHeals: while the peer is unreachable the
// backlog grows to the bound (older writes dropped and counted); once the
// peer listens again the backlog drains and the peer has the newest writes.
func TestPartitionFillsQueueThenHeals(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peerAddr := ln.Addr().String()
	ln.Close() // the peer is down: connections are refused
	cfg := testConfig()
	cfg.peers, cfg.queue = []string{peerAddr}, 4
	a := startReplica(t, nil, cfg)
	q := a.s.peers[0]
	for n := 1; n <= 10; n++ {
		do(t, a.s, http.MethodPut, "/items/"+skuN(n), `{"name":"n","qty":1,"price_cents":1}`)
	}
	if q.len() != 4 || testutil.ToFloat64(q.backlog) != 4 || testutil.ToFloat64(q.dropped) != 6 {
		t.Fatalf("partitioned: backlog %d (gauge %v), dropped %v; want 4, 4, 6", q.len(), testutil.ToFloat64(q.backlog), testutil.ToFloat64(q.dropped))
	}
	waitFor(t, "a failed send", func() bool { return testutil.ToFloat64(q.errors) > 0 })

	ln, err = net.Listen("tcp", peerAddr) // heal
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", peerAddr, err)
	}
	b := startReplica(t, ln, testConfig())
	waitFor(t, "the backlog to drain", func() bool { return q.len() == 0 })
	for n := 7; n <= 10; n++ {
		if _, ok := b.s.store.Get(skuN(n)); !ok {
			t.Errorf("b lacks %s, one of the 4 newest writes", skuN(n))
		}
	}
	if b.s.store.Len() != 4 || testutil.ToFloat64(q.backlog) != 0 {
		t.Errorf("b holds %d items, backlog gauge %v; want 4, 0", b.s.store.Len(), testutil.ToFloat64(q.backlog))
	}
}
