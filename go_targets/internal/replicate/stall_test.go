package replicate

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// stallProxy forwards TCP connections to target and can stall them the way a
// partition that drops packets (nftables drop) does: nothing is closed or
// reset, bytes just stop flowing in both directions, and connections opened
// meanwhile connect but never get an answer.
//
// What a userspace proxy cannot reproduce by itself is what makes a long
// partition hurt after the heal: TCP retransmits a connection's unacked data
// with exponential backoff, so after a partition of length d its next
// retransmission, the first packet that can get through, comes up to about d
// after the heal. resume(lag) models that: new connections work at once,
// connections that were stalled stay stalled for lag more.
type stallProxy struct {
	lis    net.Listener
	target string

	mu     sync.Mutex
	down   bool
	closed bool
	conns  map[*stallConn]struct{}
	timer  *time.Timer
	wg     sync.WaitGroup
}

type stallConn struct {
	p      *stallProxy
	a, b   net.Conn
	held   chan struct{} // non-nil while stalled, closed on release (under p.mu)
	done   chan struct{}
	closer sync.Once
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{lis: lis, target: target, conns: map[*stallConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) addr() string { return p.lis.Addr().String() }

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.lis.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = a.Close()
			continue
		}
		c := &stallConn{p: p, a: a, b: b, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = a.Close()
			_ = b.Close()
			return
		}
		if p.down {
			c.held = make(chan struct{})
		}
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go c.pipe(b, a)
		go c.pipe(a, b)
	}
}

// pipe copies src to dst, holding bytes (unread, or read but not written)
// while the connection is stalled.
func (c *stallConn) pipe(dst, src net.Conn) {
	defer c.p.wg.Done()
	defer c.close()
	buf := make([]byte, 32<<10)
	for {
		if !c.pass() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !c.pass() {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass waits while the connection is stalled; false: it was closed.
func (c *stallConn) pass() bool {
	c.p.mu.Lock()
	held := c.held
	c.p.mu.Unlock()
	if held == nil {
		return true
	}
	select {
	case <-held:
		return true
	case <-c.done:
		return false
	}
}

func (c *stallConn) close() {
	c.closer.Do(func() {
		close(c.done)
		_ = c.a.Close()
		_ = c.b.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
}

// blackhole stalls every connection, current and new.
func (p *stallProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		if c.held == nil {
			c.held = make(chan struct{})
		}
	}
}

// resume lets new connections through at once and the stalled ones after
// lag (unless the proxy is down again by then).
func (p *stallProxy) resume(lag time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
	var held []*stallConn
	for c := range p.conns {
		if c.held != nil {
			held = append(held, c)
		}
	}
	p.timer = time.AfterFunc(lag, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.down || p.closed {
			return
		}
		for _, c := range held {
			if c.held != nil {
				close(c.held)
				c.held = nil
			}
		}
	})
}

func (p *stallProxy) close() {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	conns := make([]*stallConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	_ = p.lis.Close()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}

// TestStalledConnectionReplacedAfterPartition: a peer behind a partition
// that drops packets for several call timeouts. After the heal the connection
// that was open during the partition stays stalled for as long again (TCP's
// retransmission backoff); the backlog must still drain promptly, over a new
// connection. Without replacing the stalled connection on a call timeout the
// backlog only drains when the old connection wakes up (lag after the heal),
// and this test fails.
func TestStalledConnectionReplacedAfterPartition(t *testing.T) {
	const (
		rpcTimeout  = time.Second
		partition   = 5 * time.Second // several call timeouts
		drainWithin = 3 * time.Second // < partition: the old connection's lag
	)
	f := newFakePeer(t)
	px := newStallProxy(t, f.addr)
	r, m := newReplicator(t, Config{
		Peers: []string{px.addr()}, Queue: Unbounded,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, RPCTimeout: rpcTimeout,
	})
	pm := m.Peer(px.addr())
	backlog := func() float64 { return testutil.ToFloat64(pm.Backlog) }

	const before, during = 1000, 3000
	value := make([]byte, 16)
	for i := range before {
		r.Put(key(i), value)
	}
	eventually(t, "initial ops replicated", 10*time.Second, func() bool { return backlog() == 0 })

	px.blackhole()
	cut := time.Now()
	for i := before; i < before+during; i++ {
		r.Put(key(i), value)
	}
	eventually(t, "several failed calls", partition, func() bool { return testutil.ToFloat64(pm.Errors) >= 3 })
	if got := backlog(); got != during {
		t.Fatalf("backlog during partition = %v, want %d", got, during)
	}
	// The partition lasts its full length (this is the scenario, not a wait
	// for readiness).
	time.Sleep(time.Until(cut.Add(partition)))
	errs := testutil.ToFloat64(pm.Errors)

	px.resume(partition)
	healed := time.Now()
	eventually(t, "backlog drained after the heal", drainWithin, func() bool { return backlog() == 0 })
	t.Logf("partition %v, %v failed calls; drained %v after the heal", partition, errs, time.Since(healed).Round(time.Millisecond))

	// Every op arrived, in order (a batch sent just before the cut may be
	// applied twice: that is at-least-once delivery).
	seen := map[string]bool{}
	next := 0
	for _, o := range f.received() {
		if seen[o.GetKey()] {
			continue
		}
		seen[o.GetKey()] = true
		if o.GetKey() != key(next) {
			t.Fatalf("op %d: key %q, want %q", next, o.GetKey(), key(next))
		}
		next++
	}
	if next != before+during {
		t.Fatalf("peer got %d distinct keys, want %d", next, before+during)
	}
}

func TestKeepaliveMatchesEnforcement(t *testing.T) {
	c, s := ClientKeepalive(), KeepaliveEnforcement()
	// grpc-go raises a smaller Time to 10s: the documented value must be real.
	if c.Time < 10*time.Second {
		t.Errorf("client keepalive time %v < grpc-go's minimum 10s", c.Time)
	}
	if s.MinTime > c.Time || (c.PermitWithoutStream && !s.PermitWithoutStream) {
		t.Errorf("server policy %+v would answer client pings %+v with GOAWAY too_many_pings", s, c)
	}
	if len(ServerOptions()) == 0 {
		t.Error("no server options")
	}
}
