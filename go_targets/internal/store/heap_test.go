package store

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// liveHeap returns the bytes of live heap objects right after a full GC, the
// observable research/go-map-memory.md §6 recommends. Two cycles, so objects
// freed by cleanups of the first are gone too.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// testKeys builds n distinct keys up front, so a heap delta taken around a
// fill counts the container, not the key strings.
func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

// waitFor polls cond until it holds or the deadline passes. It is how tests
// wait for asynchronous runtime work (goroutine exit, GC cleanups) without
// guessing a sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
