package store

import (
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"
)

// TestPtrCycleIsCollected refutes the seed's §2.2 claim that cross-linked
// nodes in a map[string]*Node defeat the GC. Cleanups attached to every node
// and meta must all run once the nodes leave the map, although each removed
// node still points at its neighbours and sits in a node→meta→node cycle.
// None may run while the map holds them.
func TestPtrCycleIsCollected(t *testing.T) {
	const n = 20_000
	keys := testKeys(n)
	p := newPtrCycle[[32]byte]()

	base := liveHeap()
	for _, k := range keys {
		p.Store(k, [32]byte{7})
	}
	var collected atomic.Int64
	count := func(struct{}) { collected.Add(1) }
	for _, nd := range p.nodes {
		runtime.AddCleanup(nd, count, struct{}{})
		runtime.AddCleanup(nd.meta, count, struct{}{})
	}
	full := liveHeap() - base
	if got := collected.Load(); got != 0 {
		t.Fatalf("%d nodes were collected while the map still held them", got)
	}

	for _, k := range keys {
		p.Delete(k)
	}
	waitFor(t, "every removed node and meta to be collected", func() bool {
		runtime.GC()
		return collected.Load() == 2*n
	})
	empty := liveHeap() - base
	runtime.KeepAlive(p)
	runtime.KeepAlive(keys) // only the nodes may count as freed

	// Each entry's node and meta are gone: at least their sizes come back.
	perEntry := int64(unsafe.Sizeof(node[[32]byte]{}) + unsafe.Sizeof(nodeMeta[[32]byte]{}))
	t.Logf("%d nodes: full %d B, after deletes %d B", n, full, empty)
	if freed := full - empty; freed < n*perEntry {
		t.Fatalf("deleting %d nodes freed %d B (full %d B, after %d B), want ≥ %d B", n, freed, full, empty, n*perEntry)
	}
}

// TestPtrCycleKeepsInsertionRing checks the cross links stay a consistent
// ring through deletes, so the pattern really is the cyclic structure the
// seed describes.
func TestPtrCycleKeepsInsertionRing(t *testing.T) {
	p := newPtrCycle[int64]()
	for i, k := range []string{"a", "b", "c", "d"} {
		p.Store(k, int64(i))
	}
	p.Delete("b")
	p.Delete("d")
	var got []int64
	for nd := p.ring.next; nd != &p.ring; nd = nd.next {
		if nd.next.prev != nd || nd.meta.node != nd {
			t.Fatalf("broken links at value %d", nd.value)
		}
		got = append(got, nd.value)
	}
	if len(got) != 2 || got[0] != 0 || got[1] != 2 {
		t.Fatalf("ring holds %v, want [0 2] in insertion order", got)
	}
}
