package store

import (
	"runtime"
	"strconv"
	"testing"
)

const ringKeys = 64

func fillRings(m *ringMap[int64]) {
	for i := range ringKeys {
		for v := range int64(3) { // a few values per key, wrapping a 2-slot ring
			m.Store("k"+strconv.Itoa(i), v)
		}
	}
}

func deleteRings(m *ringMap[int64]) {
	for i := range ringKeys {
		m.Delete("k" + strconv.Itoa(i))
	}
}

// TestRingBufferStopsGoroutinesOnDelete: one goroutine per key while the key
// lives, and back to the baseline once every key is deleted.
func TestRingBufferStopsGoroutinesOnDelete(t *testing.T) {
	base := runtime.NumGoroutine()
	m := newRingMap[int64](2, false)
	defer m.Close()
	fillRings(m)
	if got := runtime.NumGoroutine(); got < base+ringKeys {
		t.Fatalf("%d goroutines with %d keys, want ≥ %d", got, ringKeys, base+ringKeys)
	}
	if v, ok := m.Load("k0"); !ok || v != 2 {
		t.Fatalf("Load = %d, %v; want the newest value 2", v, ok)
	}
	deleteRings(m)
	waitFor(t, "ring goroutines to end after Delete", func() bool { return runtime.NumGoroutine() <= base })
}

// TestRingBufferLeak reproduces the seed's §4.4 leak. A leaky and a correct
// store go through the same deletes; once the correct one's goroutines are
// gone, the leaky one's must all still be there. Close then ends them.
func TestRingBufferLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	leaky := newRingMap[int64](2, true)
	defer leaky.Close()
	fillRings(leaky)
	deleteRings(leaky)

	correct := newRingMap[int64](2, false)
	defer correct.Close()
	fillRings(correct)
	deleteRings(correct)

	waitFor(t, "the correct store's goroutines to end", func() bool {
		return runtime.NumGoroutine() <= base+ringKeys
	})
	if got := runtime.NumGoroutine(); got != base+ringKeys || leaky.Len() != 0 {
		t.Fatalf("with RingLeak, %d goroutines for %d deleted keys (Len %d), want %d",
			got-base, ringKeys, leaky.Len(), ringKeys)
	}

	leaky.Close()
	waitFor(t, "Close to end the leaked goroutines", func() bool { return runtime.NumGoroutine() <= base })
}
