package store

import (
	"bytes"
	"testing"
)

// A 32-byte value kept as a slice of a 4 KiB buffer pins the buffer: 1000
// entries hold about 4 MiB. Cloned to size they hold about 48 KiB of values.
func TestSubsliceValuesPinTheirBuffers(t *testing.T) {
	keys := testKeys(1000)
	value := bytes.Repeat([]byte("v"), 32)
	for _, tc := range []struct {
		bufSize       int
		minDelta      int64
		maxDelta      int64
		wantStoredCap int
		description   string
	}{
		{4096, 1000 * 4096, 1000*4096 + 200<<10, 4096, "slices of 4 KiB buffers"},
		{0, 1000 * 32, 200 << 10, 32, "values cloned to size"},
	} {
		s := openStore(t, "subslice", Options{SliceBuffer: tc.bufSize})
		before := liveHeap()
		for _, k := range keys {
			if _, err := s.Put(k, value); err != nil {
				t.Fatal(err)
			}
		}
		delta := liveHeap() - before
		if delta < tc.minDelta || delta > tc.maxDelta {
			t.Errorf("%s: 1000 entries hold %d B, want %d..%d", tc.description, delta, tc.minDelta, tc.maxDelta)
		}
		got, ok := s.Get(keys[0])
		if !ok || !bytes.Equal(got, value) {
			t.Errorf("%s: Get = %q, %v; want the value back", tc.description, got, ok)
		}
		if c := cap(got); c != tc.wantStoredCap {
			t.Errorf("%s: stored value has cap %d, want %d", tc.description, c, tc.wantStoredCap)
		}
	}
}
