package store

import (
	"bytes"
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

// ringGoroutines counts the goroutines parked in a ring's run loop, from a
// dump of every goroutine's stack. runtime.NumGoroutine would count the test
// binary's other goroutines too (exec pipe copiers, GC cleanup workers,
// goroutines of earlier tests still in goexit), whose comings and goings
// made exact counts flaky; the stacks name the ones this pattern owns.
func ringGoroutines() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("store.(*ring[...]).run("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// settleRings waits until earlier tests' ring goroutines have ended, so a
// test's counts are its own.
func settleRings(t *testing.T) {
	t.Helper()
	waitFor(t, "ring goroutines of earlier tests to end", func() bool { return ringGoroutines() == 0 })
}

// TestRingBufferStopsGoroutinesOnDelete: one goroutine per key while the key
// lives, none once every key is deleted.
func TestRingBufferStopsGoroutinesOnDelete(t *testing.T) {
	settleRings(t)
	m := newRingMap[int64](2, false)
	defer m.Close()
	fillRings(m)
	if got := ringGoroutines(); got != ringKeys {
		t.Fatalf("%d ring goroutines with %d keys, want one per key", got, ringKeys)
	}
	if v, ok := m.Load("k0"); !ok || v != 2 {
		t.Fatalf("Load = %d, %v; want the newest value 2", v, ok)
	}
	deleteRings(m)
	waitFor(t, "ring goroutines to end after Delete", func() bool { return ringGoroutines() == 0 })
}

// TestRingBufferLeak reproduces the seed's §4.4 leak. A leaky and a correct
// store go through the same deletes; once the correct one's goroutines are
// gone, the leaky one's must all still be there. Close then ends them.
func TestRingBufferLeak(t *testing.T) {
	settleRings(t)
	leaky := newRingMap[int64](2, true)
	defer leaky.Close()
	fillRings(leaky)
	deleteRings(leaky)

	correct := newRingMap[int64](2, false)
	defer correct.Close()
	fillRings(correct)
	deleteRings(correct)

	waitFor(t, "the correct store's goroutines to end", func() bool { return ringGoroutines() <= ringKeys })
	if got := ringGoroutines(); got != ringKeys || leaky.Len() != 0 {
		t.Fatalf("with RingLeak, %d ring goroutines for %d deleted keys (Len %d), want %d",
			got, ringKeys, leaky.Len(), ringKeys)
	}

	leaky.Close()
	waitFor(t, "Close to end the leaked goroutines", func() bool { return ringGoroutines() == 0 })
}
