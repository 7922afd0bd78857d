package store

import (
	"fmt"
	"sync"
)

const defaultRingSize = 8

// ringMap is the seed's §4.4 pattern: every key owns a ring buffer of its
// last Options.RingSize values, fed through a channel to a goroutine that
// belongs to that key. The memory that matters is not the map: it is one
// goroutine (stack plus channels) per key, alive until someone stops it.
//
// Delete stops the key's goroutine. With Options.RingLeak it forgets to, the
// seed's bug: the goroutine stays blocked on channels nobody will ever use
// again, and it keeps its ring (and every value in it) alive with it. Close
// stops every goroutine, leaked ones included, so a server or test that shuts
// the store down leaves nothing running; until then the leak is real.
type ringMap[V any] struct {
	mu     sync.RWMutex
	rings  map[string]*ring[V]
	leaked []*ring[V] // rings deleted under RingLeak, still running
	size   int
	leak   bool
	closed bool
	wg     sync.WaitGroup
}

// ring is one key's buffer and the channels its goroutine serves.
type ring[V any] struct {
	in   chan V        // unbuffered: Store hands each value to the goroutine
	ack  chan struct{} // the goroutine confirms the value is in buf, so Load after Store sees it
	stop chan struct{} // closed to end the goroutine

	mu    sync.Mutex
	buf   []V
	next  int // slot the next value goes to
	count int // values held, at most len(buf)
}

func newRingMap[V any](size int, leak bool) *ringMap[V] {
	return &ringMap[V]{rings: make(map[string]*ring[V]), size: size, leak: leak}
}

// ringMapGoType spells the per-key ring. Two things are not in the type:
// the ring's length (Options.RingSize; Go syntax cannot give a slice a
// length) and the goroutine stacks, which are not heap objects; the model
// takes both from elsewhere (the options and go_goroutines).
func ringMapGoType(value string, _ Options) string {
	return fmt.Sprintf("map[string]*struct{In chan %[1]s; Ack chan struct{}; Stop chan struct{}; "+
		"Mu sync.Mutex; Buf []%[1]s; Next int; Count int}", value)
}

// run is the key's goroutine: it writes each value it receives into the
// ring until stop is closed.
func (r *ring[V]) run() {
	for {
		select {
		case v := <-r.in:
			r.mu.Lock()
			r.buf[r.next] = v
			r.next = (r.next + 1) % len(r.buf)
			r.count = min(r.count+1, len(r.buf))
			r.mu.Unlock()
			r.ack <- struct{}{}
		case <-r.stop:
			return
		}
	}
}

// put hands v to the goroutine and waits until it is stored. The caller
// holds ringMap.mu (for reading at least), so Delete and Close, which take it
// for writing, cannot stop the goroutine while a put is in flight.
func (r *ring[V]) put(v V) {
	r.in <- v
	<-r.ack
}

func (r *ring[V]) newest() (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count == 0 {
		var zero V
		return zero, false
	}
	return r.buf[(r.next+len(r.buf)-1)%len(r.buf)], true
}

func (m *ringMap[V]) Store(key string, v V) bool {
	m.mu.RLock()
	if r, ok := m.rings[key]; ok {
		r.put(v)
		m.mu.RUnlock()
		return false
	}
	m.mu.RUnlock()

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	r, existed := m.rings[key]
	if !existed {
		r = &ring[V]{
			in:   make(chan V),
			ack:  make(chan struct{}),
			stop: make(chan struct{}),
			buf:  make([]V, m.size),
		}
		m.rings[key] = r
		// Not wg.Go (Go 1.25): maptarget also builds with Go 1.23 (go1.23.mod).
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			r.run()
		}()
	}
	r.put(v)
	return !existed
}

// Load returns the newest value in the key's ring.
func (m *ringMap[V]) Load(key string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.rings[key]
	if !ok {
		var zero V
		return zero, false
	}
	return r.newest()
}

func (m *ringMap[V]) Delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rings[key]
	if !ok {
		return false
	}
	delete(m.rings, key)
	if m.leak {
		m.leaked = append(m.leaked, r)
	} else {
		close(r.stop)
	}
	return true
}

func (m *ringMap[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.rings)
}

// Close stops every goroutine, leaked ones too, and waits for them to end.
func (m *ringMap[V]) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for _, r := range m.rings {
			close(r.stop)
		}
		for _, r := range m.leaked {
			close(r.stop)
		}
		m.rings, m.leaked = map[string]*ring[V]{}, nil
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}
