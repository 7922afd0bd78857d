package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/mapquake/mapquake/mapprobe"
)

func item(name string, qty int64) Item {
	return Item{Name: name, Qty: qty, PriceCents: 100 * qty}
}

// skuN is the n-th SKU in the locustfile's format.
func skuN(n int) string { return fmt.Sprintf("sku-%06d", n) }

// frozenClock makes every write happen at the same instant, so the store's
// own tie-breaking is what orders them.
func frozenClock() time.Time { return time.Unix(1700000000, 0) }

func TestStorePutGetDelete(t *testing.T) {
	s := NewStore(10, false)
	if created, _ := s.Put("sku-7", item("bolt", 3)); !created {
		t.Error("first Put of a SKU: created = false")
	}
	if created, _ := s.Put("sku-7", item("bolt M6", 4)); created {
		t.Error("second Put of a SKU: created = true")
	}
	got, ok := s.Get("sku-7")
	if !ok || got.Name != "bolt M6" || got.Qty != 4 || got.PriceCents != 400 || got.Updated == 0 {
		t.Errorf("Get(sku-7) = %+v, %v", got, ok)
	}
	if !s.Delete("sku-7") || s.Delete("sku-7") {
		t.Error("Delete(sku-7) twice: want true then false")
	}
	if _, ok := s.Get("sku-7"); ok || s.Len() != 0 || s.HighWater() != 1 {
		t.Errorf("after delete: Len %d, HighWater %d; want 0, 1", s.Len(), s.HighWater())
	}
}

func TestCapacityEvictsOldestUpdated(t *testing.T) {
	s := NewStore(4, false) // batch of ceil(4/64) = 1
	s.now = frozenClock
	for n := 1; n <= 4; n++ {
		s.Put(skuN(n), item("x", 1))
	}
	s.Put(skuN(1), item("x", 2)) // 1 is now the newest: 2 is the oldest-updated
	if _, evicted := s.Put(skuN(5), item("x", 1)); evicted != 1 {
		t.Fatalf("Put at capacity evicted %d, want 1", evicted)
	}
	if _, ok := s.Get(skuN(2)); ok {
		t.Error("SKU 2, the oldest-updated, is still there")
	}
	for _, n := range []int{1, 3, 4, 5} {
		if _, ok := s.Get(skuN(n)); !ok {
			t.Errorf("SKU %d was evicted", n)
		}
	}
	// Overwriting at capacity evicts nothing.
	if _, evicted := s.Put(skuN(3), item("y", 1)); evicted != 0 {
		t.Errorf("overwrite at capacity evicted %d", evicted)
	}
	if s.Len() != 4 || s.HighWater() != 4 || s.Evictions() != 1 {
		t.Errorf("Len %d, HighWater %d, Evictions %d; want 4, 4, 1", s.Len(), s.HighWater(), s.Evictions())
	}
}

func TestCapacityEvictsInBatches(t *testing.T) {
	const capacity = 130 // batch of ceil(130/64) = 3
	s := NewStore(capacity, false)
	for n := range capacity {
		s.Put(skuN(n), item("x", 1))
	}
	if _, evicted := s.Put(skuN(1000), item("x", 1)); evicted != 3 {
		t.Fatalf("evicted %d, want 3", evicted)
	}
	for n := range 3 {
		if _, ok := s.Get(skuN(n)); ok {
			t.Errorf("SKU %d (among the 3 oldest) is still there", n)
		}
	}
	if s.Len() != capacity-2 || s.HighWater() != capacity {
		t.Errorf("Len %d, HighWater %d; want %d, %d", s.Len(), s.HighWater(), capacity-2, capacity)
	}
	for n := 2000; n < 2100; n++ {
		s.Put(skuN(n), item("x", 1))
		if s.Len() > capacity {
			t.Fatalf("Len %d over capacity %d", s.Len(), capacity)
		}
	}
}

func TestLeakGrowsHistoryOnlyWithLeak(t *testing.T) {
	for _, leak := range []bool{false, true} {
		s := NewStore(8, leak)
		for i := range int64(100) {
			s.Put(skuN(int(i%4)), item("x", i)) // 4 creates, 96 overwrites
		}
		for n := 100; n < 110; n++ {
			s.Put(skuN(n), item("x", 1)) // 4 fit, then 6 evictions
		}
		s.Delete(skuN(109))
		want := 0
		if leak {
			want = 96 + 6 + 1
		}
		if got := s.HistoryLen(); got != want {
			t.Errorf("leak=%v: history has %d changes, want %d", leak, got, want)
		}
		if !leak && s.history != nil {
			t.Error("leak=false: history was allocated")
		}
	}
}

// sampleHeap takes mapprobe's exact sample (no maps registered: heap only).
func sampleHeap() uint64 { return mapprobe.NewGCHandler(nil).Measure().LiveBytes }

// TestLeakHeapGrowsBeyondTheMap runs the same overwrite-heavy load on a
// healthy and a leaking store: the healthy heap stays at the map's size,
// the leaking one grows by at least one change record per overwrite.
func TestLeakHeapGrowsBeyondTheMap(t *testing.T) {
	const skus, writes = 1000, 50000
	growth := map[bool]int64{}
	for _, leak := range []bool{false, true} {
		s := NewStore(skus, leak)
		for n := range skus {
			s.Put(skuN(n), item("x", 1))
		}
		before := sampleHeap()
		for i := range writes {
			s.Put(skuN(i%skus), item("y", int64(i)))
		}
		after := sampleHeap()
		runtime.KeepAlive(s)
		growth[leak] = int64(after) - int64(before)
	}
	t.Logf("heap growth over %d overwrites: healthy %d bytes, leaking %d bytes", writes, growth[false], growth[true])
	const changeBytes = 64 // sizeof(change): 16 + 40 + 1, padded
	if growth[false] > 64<<10 {
		t.Errorf("healthy store: heap grew %d bytes over %d overwrites; want the map's size only", growth[false], writes)
	}
	if growth[true] < writes*changeBytes {
		t.Errorf("leaking store: heap grew %d bytes over %d overwrites; want at least %d", growth[true], writes, writes*changeBytes)
	}
}

// TestOverwriteKeepsTheEntry: an overwrite updates the stored Item in place,
// so the map keeps its key and its pointer; a new SKU's key is a copy of
// the caller's string, not a view of it.
func TestOverwriteKeepsTheEntry(t *testing.T) {
	s := NewStore(10, false)
	path := "/items/sku-000042"
	sku := path[len("/items/"):] // what a path value is: a substring of the URL
	s.Put(sku, item("nut", 1))
	var key string
	var first *Item
	s.Entries(func(k string, v *Item) bool { key, first = k, v; return true })
	if key != sku || unsafe.StringData(key) == unsafe.StringData(sku) {
		t.Errorf("stored key %q shares the caller's bytes: it would pin the whole URL", key)
	}
	s.Put(strings.Clone(sku), item("nut M8", 2))
	s.Entries(func(k string, v *Item) bool {
		if unsafe.StringData(k) != unsafe.StringData(key) || v != first || v.Name != "nut M8" || v.Qty != 2 {
			t.Errorf("after an overwrite: key %q at %p, item %+v at %p; want the same key and Item, updated",
				k, unsafe.StringData(k), *v, v)
		}
		return true
	})
}

func TestEntriesStopsWhenTold(t *testing.T) {
	s := NewStore(100, false)
	for n := range 10 {
		s.Put(skuN(n), item("x", int64(n)))
	}
	seen := map[string]int64{}
	s.Entries(func(k string, v *Item) bool { seen[k] = v.Qty; return true })
	if len(seen) != 10 || seen[skuN(7)] != 7 {
		t.Errorf("Entries yielded %v; want the 10 items", seen)
	}
	calls := 0
	s.Entries(func(string, *Item) bool { calls++; return calls < 3 })
	if calls != 3 {
		t.Errorf("Entries called yield %d times after it returned false at the 3rd", calls)
	}
	s.Put(skuN(99), item("x", 1)) // the lock was released
}
