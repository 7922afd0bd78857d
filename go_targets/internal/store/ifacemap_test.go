package store

import (
	"runtime"
	"testing"
	"unsafe"
)

// TestIfaceMapBoxesEveryRecord shows the seed's §2.4 claim on this Go: the
// same entries cost more in map[string]any than in a typed map.
//
// With V = int64 the record is 16 bytes, the same as an interface slot, so
// both maps have identical slots and tables; the only difference is the box
// ifacemap allocates per entry, one 16-byte object (research §5: a 16-byte
// noscan value goes through convTnoptr into the 16-byte size class). The
// difference must therefore be n·16 bytes, give or take a table (hash seeds
// are random, so the two maps may split a table differently).
func TestIfaceMapBoxesEveryRecord(t *testing.T) {
	const n = 100_000
	keys := testKeys(n)
	measure := func(m Map[int64]) int64 {
		base := liveHeap()
		for i, k := range keys {
			m.Store(k, int64(i)+1000)
		}
		grown := liveHeap() - base
		runtime.KeepAlive(m)
		runtime.KeepAlive(keys) // the keys are not part of either map's cost
		return grown
	}
	boxed := measure(newIfaceMap[int64]())
	inline := measure(newStructMap[int64]())

	box := int64(unsafe.Sizeof(record[int64]{}))
	want := n * box
	// One 1024-slot table of 32-byte slots plus control bytes is the most
	// the random split can move between the two maps.
	table := int64(1024 * (unsafe.Sizeof("") + unsafe.Sizeof(any(nil)) + 1))
	t.Logf("%d entries: ifacemap %d B, structmap %d B", n, boxed, inline)
	if diff := boxed - inline; diff < want-2*table || diff > want+2*table {
		t.Fatalf("ifacemap %d B, structmap %d B: difference %d B, want %d ± %d (one %d-byte box per entry)",
			boxed, inline, diff, want, 2*table, box)
	}
}
