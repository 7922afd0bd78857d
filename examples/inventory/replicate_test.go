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
	for sku := uint64(1); sku <= 5; sku++ {
		q.push(sku, item("x", int64(sku)))
	}
	if q.len() != 3 || testutil.ToFloat64(q.backlog) != 3 || testutil.ToFloat64(q.dropped) != 2 {
		t.Fatalf("after 5 pushes into 3: len %d, backlog %v, dropped %v; want 3, 3, 2",
			q.len(), testutil.ToFloat64(q.backlog), testutil.ToFloat64(q.dropped))
	}
	for want := uint64(3); want <= 5; want++ {
		op, ok := q.front()
		if !ok || op.sku != want {
			t.Fatalf("front = %d, %v; want SKU %d (the oldest two were dropped)", op.sku, ok, want)
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
	q.push(1, Item{})
	q.push(2, Item{})
	sending, _ := q.front()
	q.push(3, Item{}) // drops SKU 1, the op being sent
	q.done(sending.seq)
	if op, _ := q.front(); q.len() != 2 || op.sku != 2 {
		t.Errorf("len %d, front SKU %d; want 2 ops starting at SKU 2", q.len(), op.sku)
	}
}

func TestQueueGrowsInOrder(t *testing.T) {
	q := newTestQueue(t, 100)
	next, want := uint64(0), uint64(0)
	for round := range 10 {
		for range 7 + round {
			q.push(next, Item{})
			next++
		}
		for range 5 {
			op, _ := q.front()
			if op.sku != want {
				t.Fatalf("front SKU %d, want %d", op.sku, want)
			}
			q.done(op.seq)
			want++
		}
	}
	if q.len() != int(next-want) || len(q.buf) > 100 {
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

	do(t, a.s, http.MethodPut, "/items/42", `{"name":"hinge","qty":9,"price_cents":350}`)
	waitFor(t, "the write to reach b", func() bool { _, ok := b.s.store.Get(42); return ok })
	got, _ := b.s.store.Get(42)
	if got.NameString() != "hinge" || got.Qty != 9 || got.PriceCents != 350 {
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
	for sku := uint64(1); sku <= 10; sku++ {
		do(t, a.s, http.MethodPut, "/items/"+itoa(sku), `{"name":"n","qty":1,"price_cents":1}`)
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
	for sku := uint64(7); sku <= 10; sku++ {
		if _, ok := b.s.store.Get(sku); !ok {
			t.Errorf("b lacks SKU %d, one of the 4 newest writes", sku)
		}
	}
	if b.s.store.Len() != 4 || testutil.ToFloat64(q.backlog) != 0 {
		t.Errorf("b holds %d items, backlog gauge %v; want 4, 0", b.s.store.Len(), testutil.ToFloat64(q.backlog))
	}
}
