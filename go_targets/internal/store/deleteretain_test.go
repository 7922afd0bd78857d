package store

import (
	"runtime"
	"testing"
	"unsafe"
)

// retainSlot is the least a map[string][32]byte spends per entry: one slot
// holding the key header and the value inline (control bytes and empty
// slots come on top).
const retainSlot = int64(unsafe.Sizeof("") + unsafe.Sizeof([32]byte{}))

// fillThenEmpty stores n entries, deletes them all and reports the live heap
// the map holds when full and when empty, relative to before it existed.
func fillThenEmpty(m *retainMap[[32]byte], keys []string) (full, empty int64) {
	base := liveHeap()
	for _, k := range keys {
		m.Store(k, [32]byte{1})
	}
	full = liveHeap() - base
	for _, k := range keys {
		m.Delete(k)
	}
	empty = liveHeap() - base
	runtime.KeepAlive(m)
	runtime.KeepAlive(keys) // else the keys die during the deletes and count as freed
	return full, empty
}

// TestDeleteRetainKeepsTables shows the seed's §2.5 claim: after deleting
// every entry the map still holds at least one slot per entry it ever had.
func TestDeleteRetainKeepsTables(t *testing.T) {
	const n = 50_000
	m := newRetainMap[[32]byte](0)
	full, empty := fillThenEmpty(m, testKeys(n))
	t.Logf("%d entries: full %d B, after deleting all %d B", n, full, empty)
	if m.Len() != 0 {
		t.Fatalf("Len = %d after deleting everything", m.Len())
	}
	if full < n*retainSlot {
		t.Fatalf("full map measured %d B, less than %d slots of %d B: the measurement is broken", full, n, retainSlot)
	}
	if empty < n*retainSlot {
		t.Fatalf("empty map holds %d B (full: %d B), want ≥ %d B: Go maps do not shrink on delete", empty, full, n*retainSlot)
	}
}

// TestDeleteRetainRebuildReleases shows the fix: with RebuildEvery, the last
// rebuild leaves an empty fresh map and the old tables are collected.
func TestDeleteRetainRebuildReleases(t *testing.T) {
	const n = 50_000
	m := newRetainMap[[32]byte](n / 10)
	full, empty := fillThenEmpty(m, testKeys(n))
	t.Logf("%d entries, RebuildEvery %d: full %d B, after deleting all %d B", n, n/10, full, empty)
	// An empty map is a 48-byte header; allow a tenth of the slots for noise.
	if limit := n * retainSlot / 10; empty > limit {
		t.Fatalf("after deletes with RebuildEvery=%d the map holds %d B (full: %d B), want ≤ %d B", n/10, empty, full, limit)
	}
}
