package mapprobe

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The expectations below are written out from the Go allocator's size
// classes (8, 16, 24, 32, 48, 64, 80, 96, 112, 128, ..., 512, 576, 640, ...)
// by hand, not computed with heapBytes, so a wrong table or rule fails.

func TestHeapBytes(t *testing.T) {
	for _, tc := range []struct {
		size   uintptr
		noscan bool
		want   uintptr
	}{
		{0, true, 0},
		{1, true, 16},   // tiny: the whole block
		{5, true, 16},   // tiny: the whole block
		{15, true, 16},  // tiny: the whole block
		{5, false, 8},   // with pointers: never tiny
		{16, true, 16},  // not below 16: a size class
		{17, true, 24},  //
		{40, false, 48}, //
		{40, true, 48},
		{100, true, 112},
		{512, false, 512},  // the largest object without a malloc header
		{513, false, 576},  // 513 + 8 B header = 521 -> 576
		{570, false, 640},  // 578 -> 640
		{570, true, 576},   // no pointers, no header
		{1025, true, 1152}, //
		{32760, false, 32768},
		{32761, false, 32768},  // large: whole pages, no header
		{32769, true, 40960},   // 5 pages
		{100000, true, 106496}, // 13 pages
	} {
		if got := heapBytes(tc.size, tc.noscan); got != tc.want {
			t.Errorf("heapBytes(%d, noscan=%v) = %d, want %d", tc.size, tc.noscan, got, tc.want)
		}
	}
}

// item is 40 bytes without pointers: a 48-byte object.
type item struct{ A, B, C, D, E int64 }

// named is 24 bytes with a pointer (a 24-byte object) and owns its Name.
type named struct {
	Name string
	N    int64
}

// ownedSeries is what a registry's owned series say for one unlabelled map.
type ownedSeries struct {
	key, value, sampled float64
	unmeasured          map[string]float64
	found               bool
}

func gatherOwned(t *testing.T, g prometheus.Gatherer) ownedSeries {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var s ownedSeries
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue()
			switch mf.GetName() {
			case ownedBytesName:
				s.found = true
				if labels["part"] == "key" {
					s.key = v
				} else {
					s.value = v
				}
			case ownedSampledName:
				s.sampled = v
			case ownedUnmeasuredName:
				if s.unmeasured == nil {
					s.unmeasured = map[string]float64{}
				}
				s.unmeasured[labels["reason"]] = v
			}
		}
	}
	return s
}

// rangeOf is the iterator a service writes: lock, range, stop when told.
func rangeOf[K comparable, V any](mu *sync.Mutex, m map[K]V) func(func(K, V) bool) {
	return func(yield func(K, V) bool) {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// measure registers m with WithEntries on a fresh registry and gathers.
func measure[K comparable, V any](t *testing.T, m map[K]V, opts ...Option) ownedSeries {
	t.Helper()
	var mu sync.Mutex
	reg := prometheus.NewPedanticRegistry()
	opts = append(opts, WithEntries(rangeOf(&mu, m)))
	if err := Register[K, V](reg, func() int { mu.Lock(); defer mu.Unlock(); return len(m) }, opts...); err != nil {
		t.Fatal(err)
	}
	s := gatherOwned(t, reg)
	if !s.found {
		t.Fatal("no mapquake_store_entry_owned_bytes series with WithEntries")
	}
	return s
}

func checkOwned(t *testing.T, got ownedSeries, key, value, sampled float64) {
	t.Helper()
	if got.key != key || got.value != value || got.sampled != sampled {
		t.Errorf("owned key %g value %g sampled %g; want %g, %g, %g", got.key, got.value, got.sampled, key, value, sampled)
	}
}

func TestOwnedStringKeysPointerValues(t *testing.T) {
	m := map[string]*item{}
	for i := 0; i < 50; i++ {
		m[fmt.Sprintf("long-key-%011d", i)] = &item{A: int64(i)} // 20 bytes: a 24-byte object
		m[fmt.Sprintf("k%04d", i)] = &item{A: int64(i)}          // 5 bytes: tiny, a 16-byte block
	}
	// Keys: (50*24 + 50*16) / 100; values: one 48-byte item each.
	checkOwned(t, measure(t, m), 20, 48, 100)
}

func TestOwnedNestedPointee(t *testing.T) {
	m := map[int]*named{}
	for i := 0; i < 10; i++ {
		m[i] = &named{Name: strings.Repeat("x", 30) + fmt.Sprint(i%10), N: int64(i)} // 31 bytes: 32
	}
	// The 24-byte named (24) and its 31-byte name (32); int keys own nothing.
	checkOwned(t, measure(t, m), 0, 56, 10)
}

func TestOwnedSharedCountedOnce(t *testing.T) {
	shared := &item{}
	name := strings.Repeat("n", 100) // 112
	m := map[int]*item{}
	names := map[int]string{}
	for i := 0; i < 10; i++ {
		m[i] = shared
		names[i] = name
	}
	checkOwned(t, measure(t, m), 0, 48.0/10, 10)
	checkOwned(t, measure(t, names), 0, 112.0/10, 10)

	// A value holding its own key (map[string]*session with session.ID ==
	// key) is charged the key's bytes once, under the key.
	byID := map[string]*named{}
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("session-%024d", i) // 32 bytes
		byID[id] = &named{Name: id}
	}
	checkOwned(t, measure(t, byID), 32, 24, 4)
}

func TestOwnedSlices(t *testing.T) {
	bufs := map[int][]byte{
		1: make([]byte, 10, 100), // cap 100: 112
		2: make([]byte, 3),       // 3 bytes, no pointers: tiny, a 16-byte block
		3: nil,                   // nothing
		4: make([]byte, 0, 1000), // 1024
	}
	checkOwned(t, measure(t, bufs), 0, (112+16+0+1024)/4.0, 4)

	// 70 pointers = 560 bytes with pointers: + 8 B malloc header = 568 -> 576,
	// and the two items the first two elements point to (the other 68 are
	// nil; elements past len are not looked at).
	ptrs := make([]*item, 2, 70)
	ptrs[0], ptrs[1] = &item{}, &item{}
	checkOwned(t, measure(t, map[int][]*item{7: ptrs}), 0, 576+2*48, 1)
}

func TestOwnedInterfaceValues(t *testing.T) {
	m := map[int]any{}
	n := 0
	for i := 0; i < 4; i++ {
		big := int64(1000 + i)
		small := int64(i)
		m[n] = big // boxed: 8 bytes without pointers, tiny: a 16-byte block
		n++
		m[n] = small // below 256: the runtime's static box, nothing
		n++
	}
	s := strings.Repeat("s", 40)
	m[n] = s // a 16-byte string header box (with pointers: 16) and 40 bytes (48)
	n++
	m[n] = &item{} // pointer-shaped: no box, the 48-byte item
	n++
	m[n] = [3]int64{1, 2, 3} // a 24-byte box
	n++
	m[n] = nil // nothing
	n++
	want := (4*16 + 4*0 + (16 + 48) + 48 + 24 + 0) / float64(n)
	checkOwned(t, measure(t, m), 0, want, float64(n))

	// Named dynamic type: the model prices the box of an any(T) slot, so
	// only what the boxed value owns is charged.
	typed := map[int]any{}
	for i := 0; i < 5; i++ {
		typed[i] = named{Name: strings.Repeat("y", 17+i%2)} // 17 or 18 bytes: 24
	}
	checkOwned(t, measure(t, typed), 0, 24+24, 5)
	checkOwned(t, measure(t, typed, WithDynamicValueType[named]()), 0, 24, 5)

	// Interface keys and non-empty interfaces.
	keys := map[any]fmt.Stringer{strings.Repeat("k", 20): stringer(strings.Repeat("v", 33))}
	// Key: 16-byte box + 24; value: 16-byte box + 48.
	checkOwned(t, measure(t, keys), 40, 64, 1)
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestOwnedEmptyMap(t *testing.T) {
	got := measure(t, map[string]*item{})
	checkOwned(t, got, 0, 0, 0)
	if got.unmeasured != nil {
		t.Errorf("unmeasured %v for an empty map", got.unmeasured)
	}
}

// node is 40 bytes with a pointer: a 48-byte object.
type node struct {
	next *node
	pad  [4]int64
}

func TestOwnedCyclesAndDepth(t *testing.T) {
	a, b := &node{}, &node{}
	a.next, b.next = b, a
	self := &node{}
	self.next = self
	checkOwned(t, measure(t, map[int]*node{1: a, 2: self}), 0, (2*48+48)/2.0, 2)

	// A chain of 20: the walk charges the first 9 (the slot's pointee and 8
	// hops more), then stops and says so.
	head := &node{}
	for i, n := 0, head; i < 19; i++ {
		n.next = &node{}
		n = n.next
	}
	got := measure(t, map[int]*node{1: head})
	checkOwned(t, got, 0, 9*48, 1)
	if got.unmeasured["depth"] != 1 {
		t.Errorf("unmeasured = %v, want depth 1", got.unmeasured)
	}
}

type holder struct {
	M map[int]int
	C chan int
	F func()
	P unsafe.Pointer
	N map[int]int // nil: owns nothing, not counted
	S string
}

func TestOwnedUnmeasuredKinds(t *testing.T) {
	x := 1
	m := map[int]holder{}
	for i := 0; i < 3; i++ {
		m[i] = holder{M: map[int]int{1: 1}, C: make(chan int), F: func() { x++ }, P: unsafe.Pointer(&x),
			S: fmt.Sprintf("%016d", i)}
	}
	got := measure(t, m)
	checkOwned(t, got, 0, 16, 3) // only the 16-byte strings
	want := map[string]float64{"map": 3, "chan": 3, "func": 3, "unsafe_pointer": 3}
	if fmt.Sprint(got.unmeasured) != fmt.Sprint(want) {
		t.Errorf("unmeasured = %v, want %v", got.unmeasured, want)
	}
}

func TestOwnedSampleSize(t *testing.T) {
	m := map[int]*item{}
	for i := 0; i < 1000; i++ {
		m[i] = &item{}
	}
	checkOwned(t, measure(t, m), 0, 48, entrySampleSize)

	// An iterator that keeps yielding after being told to stop.
	reg := prometheus.NewPedanticRegistry()
	calls := 0
	stubborn := func(yield func(int, *item) bool) {
		for k, v := range m {
			calls++
			yield(k, v)
		}
	}
	if err := Register[int, *item](reg, func() int { return len(m) }, WithEntries(stubborn)); err != nil {
		t.Fatal(err)
	}
	checkOwned(t, gatherOwned(t, reg), 0, 48, entrySampleSize)
	if calls != len(m) {
		t.Fatalf("iterator ran %d times", calls)
	}
}

func TestOwnedSyncMapAndShape(t *testing.T) {
	var sm sync.Map
	for i := 0; i < 8; i++ {
		sm.Store(fmt.Sprintf("sync-key-%07d", i), &item{}) // 16 bytes
	}
	entries := WithEntries(func(yield func(string, *item) bool) {
		sm.Range(func(k, v any) bool { return yield(k.(string), v.(*item)) })
	})
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterSyncMap[string, *item](reg, func() int { return 8 }, entries); err != nil {
		t.Fatal(err)
	}
	checkOwned(t, gatherOwned(t, reg), 16, 48, 8)

	// RegisterShape takes any K and V; an any(T) value type's box is priced.
	m := map[string]any{"a": named{Name: strings.Repeat("z", 20)}}
	var mu sync.Mutex
	reg = prometheus.NewPedanticRegistry()
	err := RegisterShape(reg, func() int { return 1 },
		Shape{GoType: "map[string]any(struct{Name string; N int64})", KeyType: "string", ValueType: "any(struct{Name string; N int64})"},
		WithEntries(rangeOf(&mu, m)))
	if err != nil {
		t.Fatal(err)
	}
	// "a" is a constant in read-only data, charged as if allocated (a tiny block).
	checkOwned(t, gatherOwned(t, reg), 16, 24, 1)
}

func TestWithEntriesTypeMismatchRefused(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	length := func() int { return 0 }
	wrong := WithEntries(func(func(string, item) bool) {})
	if err := Register[string, *item](reg, length, wrong); err == nil ||
		!strings.Contains(err.Error(), "Register[string, *mapprobe.item] got WithEntries[string, mapprobe.item]") {
		t.Errorf("Register with another V: err = %v", err)
	}
	if err := RegisterSyncMap[int, item](reg, length, wrong); err == nil {
		t.Error("RegisterSyncMap accepted WithEntries of other types")
	}
	if err := Register[string, item](reg, length, WithEntries[string, item](nil)); err == nil ||
		!strings.Contains(err.Error(), "nil") {
		t.Errorf("nil iterator: err = %v", err)
	}
	// Nothing was registered above; RegisterShape takes any types.
	if err := RegisterShape(reg, length, Shape{GoType: "map[int]int", KeyType: "int", ValueType: "int"}, wrong); err != nil {
		t.Fatal(err)
	}
}

// liveHeapAfterGC is the live heap after two collections (the second frees
// what sync.Pool victim caches held; see Measure).
func liveHeapAfterGC() float64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return float64(s[0].Value.Uint64())
}

// TestOwnedMatchesTheRuntime checks the charges against what the runtime
// really allocates: the live heap grows by the owned bytes when the keys
// and pointees are made (the slices that hold them are made beforehand).
func TestOwnedMatchesTheRuntime(t *testing.T) {
	const n = 20000
	keys, vals := make([]string, n), make([]*named, n)
	before := liveHeapAfterGC()
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%016d", i)                               // 20 bytes: 24
		vals[i] = &named{Name: fmt.Sprintf("a name of 33 bytes: %013d", i)} // 24 + 48
	}
	grown := liveHeapAfterGC() - before
	m := make(map[string]*named, n)
	for i := range keys {
		m[keys[i]] = vals[i]
	}
	got := measure(t, m)
	predicted := float64(n) * (got.key + got.value)
	if got.key != 24 || got.value != 72 || grown < predicted*0.98 || grown > predicted*1.02 {
		t.Errorf("owned %g + %g per entry predicts %.0f B for %d entries; the live heap grew %.0f B",
			got.key, got.value, predicted, n, grown)
	}
	t.Logf("predicted %.0f B, live heap grew %.0f B (%+.2f %%)", predicted, grown, 100*(grown-predicted)/predicted)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(vals)
}

// garbageSink makes a string escape to the heap and die at the next assignment.
var garbageSink string

// TestTinyObjectsAmongGarbageHoldTheirBlock checks the tiny-object charge
// against the runtime: a service makes each entry's short key among the
// request's garbage, the garbage dies, and the key holds its 16-byte block
// alone.
func TestTinyObjectsAmongGarbageHoldTheirBlock(t *testing.T) {
	const n = 100000
	keys := make([]string, n)
	before := liveHeapAfterGC()
	for i := range keys {
		keys[i] = fmt.Sprintf("k%08d", i)     // 9 bytes: tiny
		garbageSink = fmt.Sprintf("g%06d", i) // 7 bytes: the rest of the key's block, dead by the next
	}
	garbageSink = "" // the request is over: its garbage dies, the keys stay
	grown := liveHeapAfterGC() - before
	m := make(map[string]struct{}, n)
	for _, k := range keys {
		m[k] = struct{}{}
	}
	got := measure(t, m)
	predicted := float64(n) * got.key
	if got.key != 16 || grown < predicted*0.98 || grown > predicted*1.02 {
		t.Errorf("owned %g per key predicts %.0f B for %d keys; the live heap grew %.0f B", got.key, predicted, n, grown)
	}
	t.Logf("predicted %.0f B, live heap grew %.0f B (%+.2f %%)", predicted, grown, 100*(grown-predicted)/predicted)
	runtime.KeepAlive(keys)
}

func TestHeapLiveWithEveryRegistration(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var mu sync.Mutex
	m := map[string]*item{"x": {}}
	for _, name := range []string{"sessions", "carts"} {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"map": name}, reg)
		if err := Register[string, *item](wrapped, func() int { return 1 }, WithEntries(rangeOf(&mu, m)),
			WithHighWater(func() int { return 2 })); err != nil {
			t.Fatal(err)
		}
	}
	if err := RegisterSyncMap[int, int](prometheus.WrapRegistererWith(prometheus.Labels{"map": "plain"}, reg),
		func() int { return 0 }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{heapLiveName, heapGoalName} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 3 {
			t.Fatalf("%s series = %d, %v; want one per registration", name, n, err)
		}
	}
	if n, err := testutil.GatherAndCount(reg, ownedBytesName); err != nil || n != 4 {
		t.Fatalf("%s series = %d, %v; want key and value for each WithEntries map", ownedBytesName, n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("GatherAndLint = %v, %v; want no problems", problems, err)
	}

	// The gauge is the live heap at scrape time: holding 64 MiB shows.
	sink = make([]byte, 64<<20)
	runtime.GC()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sink = nil
	for _, mf := range families {
		if mf.GetName() != heapLiveName {
			continue
		}
		for _, s := range mf.GetMetric() {
			if v := s.GetGauge().GetValue(); v < 64<<20 {
				t.Errorf("%s = %g while 64 MiB are live", heapLiveName, v)
			}
		}
	}
}

var sink []byte

// TestOwnedConcurrentScrapes measures while the map changes, for the race
// detector: the walk reads entries only while the iterator holds the lock.
func TestOwnedConcurrentScrapes(t *testing.T) {
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	m := map[string]*named{}
	if err := Register[string, *named](reg, func() int { mu.Lock(); defer mu.Unlock(); return len(m) },
		WithEntries(rangeOf(&mu, m))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if g < 2 {
					mu.Lock()
					k := fmt.Sprintf("%d-%d", g, i%50)
					if v, ok := m[k]; ok {
						v.Name = strings.Repeat("w", i)
					} else {
						m[k] = &named{Name: k}
					}
					mu.Unlock()
				} else if _, err := reg.Gather(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := gatherOwned(t, reg); got.sampled != 100 {
		t.Errorf("sampled %g, want the 100 entries", got.sampled)
	}
}

func TestOwnedWalkBudget(t *testing.T) {
	m := map[int][]*item{}
	for i := 0; i < 100; i++ {
		s := make([]*item, 1000)
		for j := range s {
			s[j] = &item{}
		}
		m[i] = s
	}
	// Each entry is 1,001 objects: an 8,000-byte array of pointers (+ 8 B
	// header: 8,192) and 1,000 items of 48. The sample stops after the
	// entry that reaches maxWalkObjects: the 66th.
	checkOwned(t, measure(t, m), 0, 8192+1000*48, 66)
}

func TestAddrSet(t *testing.T) {
	s := newAddrSet(4) // grows many times
	for round := 0; round < 2; round++ {
		for a := uintptr(8); a <= 80000; a += 8 {
			if got := s.add(a); got != (round == 0) {
				t.Fatalf("round %d: add(%d) = %v", round, a, got)
			}
		}
	}
	if s.n != 10000 || 2*s.n > len(s.slots) {
		t.Fatalf("%d addresses in %d slots", s.n, len(s.slots))
	}
}
