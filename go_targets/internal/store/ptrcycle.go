package store

import "sync"

// ptrCycle is the seed's §2.2 pattern, which claims that a map[string]*Node
// whose nodes point at each other defeats the garbage collector. It does not:
// Go's GC traces from roots, so a cycle nobody reaches is garbage like any
// other object. This store makes the cycles as bad as it can and lets the
// tests (and the ptrcycle scenario) show the memory coming back.
//
// Every node sits in a doubly linked ring in insertion order (cross links to
// its neighbours) and owns a nodeMeta that points back at it (a self cycle).
// Delete removes the node from the map and unlinks its neighbours from it, but
// leaves the removed node's own links in place: it still points at its old
// neighbours and at its meta, which still points at it. Nothing reachable
// points at the node any more, so the GC collects node and meta together.
type ptrCycle[V any] struct {
	mu    sync.RWMutex
	nodes map[string]*node[V]
	ring  node[V] // sentinel of the insertion-order ring
	seq   uint64
}

type node[V any] struct {
	value      V
	prev, next *node[V]
	meta       *nodeMeta[V]
}

// nodeMeta is per-node bookkeeping that points back at its node.
type nodeMeta[V any] struct {
	node *node[V]
	seq  uint64 // insertion order
}

func newPtrCycle[V any]() *ptrCycle[V] {
	p := &ptrCycle[V]{nodes: make(map[string]*node[V])}
	p.ring.prev, p.ring.next = &p.ring, &p.ring
	return p
}

// ptrCycleGoType spells node and meta as anonymous structs. Go syntax cannot
// write a recursive anonymous type, so the links back to a node are
// unsafe.Pointer: the same size, and the model does not follow pointers.
func ptrCycleGoType(value string, _ Options) string {
	return "map[string]*struct{Value " + value +
		"; Prev unsafe.Pointer; Next unsafe.Pointer; Meta *struct{Node unsafe.Pointer; Seq uint64}}"
}

func (p *ptrCycle[V]) Store(key string, v V) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.nodes[key]; ok {
		n.value = v
		return false
	}
	p.seq++
	n := &node[V]{value: v}
	n.meta = &nodeMeta[V]{node: n, seq: p.seq}
	// Link n in at the tail of the ring, just before the sentinel.
	n.prev, n.next = p.ring.prev, &p.ring
	n.prev.next = n
	p.ring.prev = n
	p.nodes[key] = n
	return true
}

func (p *ptrCycle[V]) Load(key string) (V, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n, ok := p.nodes[key]
	if !ok {
		var zero V
		return zero, false
	}
	return n.value, true
}

func (p *ptrCycle[V]) Delete(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[key]
	if !ok {
		return false
	}
	delete(p.nodes, key)
	// Unlink the neighbours from n; n.prev, n.next and n.meta.node stay set.
	n.prev.next = n.next
	n.next.prev = n.prev
	return true
}

func (p *ptrCycle[V]) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.nodes)
}

func (p *ptrCycle[V]) Close() error { return nil }
