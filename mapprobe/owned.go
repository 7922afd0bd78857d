package mapprobe

import (
	"reflect"
	"sort"
	"sync"
	"unsafe"
)

// entrySampleSize is how many entries one collect measures. The mean over
// a sample of n entries has a standard error of sd/sqrt(n): 256 entries put
// it at 1/16 of the spread between entries (entries whose owned bytes vary
// by 50 B give a mean good to about 3 B), and quadrupling the sample would
// only halve that, while the walk's cost, and the time the map's lock is
// held, grow with it. At 256 it stays cheap enough for every scrape: about 1,000
// objects for map[string]*T with two strings in T, 50 to 75 us of CPU, mostly
// cache misses (BenchmarkCollectWithEntries).
const entrySampleSize = 256

// maxOwnedDepth is how many pointer hops the walk follows from an entry; an
// object deeper than that is charged but not looked into (a linked list
// longer than this is cut off and counted as unmeasured "depth").
const maxOwnedDepth = 8

// maxWalkObjects bounds the heap objects one collect visits, so that a map
// whose entries own large graphs keeps its scrapes (and the time its lock
// is held) short: the sample ends with the entry that crosses it (an entry
// is always walked whole), and the means are over the entries measured.
const maxWalkObjects = 1 << 16

// Why a reference was not followed (the reason label of
// mapquake_store_entry_owned_unmeasured_refs).
const (
	unmeasuredMap           = "map"
	unmeasuredChan          = "chan"
	unmeasuredFunc          = "func"
	unmeasuredUnsafePointer = "unsafe_pointer"
	unmeasuredDepth         = "depth"
)

// part is the key or the value of an entry.
type part int

const (
	keyPart part = iota
	valuePart
)

// entrySampler is a registration's WithEntries: the caller's iterator,
// wrapped so that it measures what it yields.
type entrySampler struct {
	keyType, valueType     reflect.Type
	keyLayout, valueLayout *layout
	// run ranges the caller's iterator, passing each entry to w.entry
	// while the caller holds the map's lock, until w says it is full.
	run func(w *walker)
	// skipKeyBox and skipValueBox: the registration's type already prices
	// the interface box of the key or value (an any(T) slot, or the boxing
	// every sync.Map store does), so the walk does not charge it again.
	skipKeyBox, skipValueBox bool
}

// ownedSample is one collect's measurement.
type ownedSample struct {
	sampled int
	bytes   [2]uint64 // by part
	// unmeasured counts the references not followed, by reason.
	unmeasured map[string]int
}

// perEntry is the mean bytes of p per sampled entry (0 for no entries).
func (s ownedSample) perEntry(p part) float64 {
	if s.sampled == 0 {
		return 0
	}
	return float64(s.bytes[p]) / float64(s.sampled)
}

func (s *entrySampler) sample() ownedSample {
	// A fresh address set each time, garbage after the collect: a set kept
	// between scrapes (in a sync.Pool) would be live heap mapquake measures.
	w := &walker{seen: newAddrSet(4 * entrySampleSize), sampler: s}
	s.run(w)
	return ownedSample{sampled: w.sampled, bytes: [2]uint64{uint64(w.bytes[keyPart]), uint64(w.bytes[valuePart])},
		unmeasured: w.unmeasured}
}

// walker measures the heap objects a sample of entries owns. It reads the
// entries' memory through their types (reflect for the layout, unsafe for
// the reads), while the caller's iterator holds the map's lock.
type walker struct {
	sampler *entrySampler
	// seen holds the address of every object charged, so that an object
	// several entries share (an interned string, a common pointee) is
	// counted once over the sample. Go's collector does not move objects,
	// so an address names one object for the whole walk.
	seen       addrSet
	part       part
	bytes      [2]uintptr
	objects    int
	sampled    int
	unmeasured map[string]int
}

// full says the sample is complete.
func (w *walker) full() bool {
	return w.sampled >= entrySampleSize || w.objects >= maxWalkObjects
}

// entry measures one key and value, given their addresses (copies of what
// the map holds: the same pointers, headers and interface words).
func (w *walker) entry(k, v unsafe.Pointer) {
	s := w.sampler
	w.part = keyPart
	w.top(s.keyLayout, k, s.skipKeyBox)
	w.part = valuePart
	w.top(s.valueLayout, v, s.skipValueBox)
	w.sampled++
}

// top walks a key or value stored in a map slot; skipBox leaves out an
// interface's box that the model already prices (what the box owns is
// still charged).
func (w *walker) top(l *layout, p unsafe.Pointer, skipBox bool) {
	if skipBox && l.kind == reflect.Interface {
		d, data, direct := dynamic(l.t, p)
		switch {
		case d == nil:
		case direct:
			w.walk(d, data, 0)
		case !isStaticBox(data):
			w.walk(d, data, 1)
		}
		return
	}
	w.walk(l, p, 0)
}

// walk charges what a value of layout l at p owns beyond its own bytes.
// depth is the number of heap objects entered to reach p.
func (w *walker) walk(l *layout, p unsafe.Pointer, depth int) {
	switch l.kind {
	case reflect.String:
		s := *(*string)(p)
		if len(s) > 0 {
			// String bytes have no pointers: a string under 16 B is tiny.
			w.charge(unsafe.Pointer(unsafe.StringData(s)), uintptr(len(s)), true)
		}
	case reflect.Slice:
		h := (*sliceHeader)(p)
		e := l.elem
		if h.data == nil || !w.charge(h.data, uintptr(h.cap)*e.size, !e.pointers) || !e.pointers || !w.deeper(depth) {
			return
		}
		// Only the first len elements: what lies between len and cap is
		// usually zero, and walking it would read past what the program uses.
		for i := 0; i < h.len; i++ {
			w.walk(e, unsafe.Add(h.data, uintptr(i)*e.size), depth+1)
		}
	case reflect.Array:
		if e := l.elem; e.pointers {
			for i := 0; i < l.n; i++ {
				w.walk(e, unsafe.Add(p, uintptr(i)*e.size), depth)
			}
		}
	case reflect.Struct:
		for _, f := range l.fields {
			w.walk(f.l, unsafe.Add(p, f.off), depth)
		}
	case reflect.Pointer:
		q := *(*unsafe.Pointer)(p)
		e := l.elem
		// The pointee is charged as an object of its type's size: a pointer
		// into the middle of a bigger object (&s.field, &a[i]) is counted as
		// if it had been allocated alone.
		if q != nil && w.charge(q, e.size, !e.pointers) && e.pointers && w.deeper(depth) {
			w.walk(e, q, depth+1)
		}
	case reflect.Interface:
		d, data, direct := dynamic(l.t, p)
		switch {
		case d == nil:
		case direct:
			// A pointer-shaped dynamic value is the interface's data word.
			w.walk(d, data, depth)
		case isStaticBox(data):
			// A small integer, empty string or nil slice the runtime
			// boxed without allocating.
		case w.charge(data, d.size, !d.pointers) && d.pointers && w.deeper(depth):
			w.walk(d, data, depth+1)
		}
	case reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		// A map's or channel's memory is not one object whose size the type
		// gives, a func value's closure has no visible type, and an
		// unsafe.Pointer has no type at all: not measured, but counted.
		if *(*unsafe.Pointer)(p) != nil {
			w.skip(unmeasuredReason(l.kind))
		}
	}
}

// deeper says whether the objects at depth+1 may be looked into.
func (w *walker) deeper(depth int) bool {
	if depth+1 > maxOwnedDepth {
		w.skip(unmeasuredDepth)
		return false
	}
	return true
}

func (w *walker) skip(reason string) {
	if w.unmeasured == nil {
		w.unmeasured = map[string]int{}
	}
	w.unmeasured[reason]++
}

// charge adds the heap object of size bytes at addr to the current part,
// unless the sample has charged it already; it says whether it was new.
func (w *walker) charge(addr unsafe.Pointer, size uintptr, noscan bool) bool {
	if addr == nil || size == 0 {
		return false
	}
	if !w.seen.add(uintptr(addr)) {
		return false
	}
	w.objects++
	w.bytes[w.part] += heapBytes(size, noscan)
	return true
}

func unmeasuredReason(k reflect.Kind) string {
	switch k {
	case reflect.Map:
		return unmeasuredMap
	case reflect.Chan:
		return unmeasuredChan
	case reflect.Func:
		return unmeasuredFunc
	}
	return unmeasuredUnsafePointer
}

// addrSet is a set of non-zero addresses: open addressing with linear
// probing, kept at most half full. For a typical sample it is one 16 KiB
// slice of garbage per collect, and half the CPU of a map[uintptr]struct{}
// (BenchmarkCollectWithEntries: 100 us with a map).
type addrSet struct {
	slots []uintptr // 0: empty; len is a power of two
	n     int
}

func newAddrSet(capacity int) addrSet {
	size := 16
	for size < 2*capacity {
		size *= 2
	}
	return addrSet{slots: make([]uintptr, size)}
}

// add inserts a and says whether it was new.
func (s *addrSet) add(a uintptr) bool {
	if 2*(s.n+1) > len(s.slots) {
		old := s.slots
		s.slots, s.n = make([]uintptr, 2*len(old)), 0
		for _, b := range old {
			if b != 0 {
				s.add(b)
			}
		}
	}
	mask := uintptr(len(s.slots) - 1)
	// Fibonacci hashing: objects are 8-byte aligned and often a size class
	// apart, so the low bits alone would cluster.
	for i := uintptr(uint64(a)*0x9E3779B97F4A7C15>>32) & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case a:
			return false
		case 0:
			s.slots[i] = a
			s.n++
			return true
		}
	}
}

// sliceHeader is the layout of every slice value.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// dynamic reads the interface of static type t at p: its dynamic type's
// layout (nil for a nil interface) and either the address of the dynamic
// value (its box) or, for a pointer-shaped dynamic type (direct), the
// address of the interface's data word, which holds the value itself.
func dynamic(t reflect.Type, p unsafe.Pointer) (d *layout, data unsafe.Pointer, direct bool) {
	var dt reflect.Type
	if t.NumMethod() == 0 {
		dt = reflect.TypeOf(*(*any)(p))
	} else if v := reflect.NewAt(t, p).Elem(); !v.IsNil() {
		dt = v.Elem().Type()
	}
	if dt == nil {
		return nil, nil, false
	}
	d = layoutOf(dt)
	// Both interface layouts are two words, the data word second.
	words := (*[2]unsafe.Pointer)(p)
	if d.direct {
		return d, unsafe.Pointer(&words[1]), true
	}
	return d, words[1], false
}

// The runtime boxes some values without allocating: integers below 256
// (and bools and bytes) point into its staticuint64s array, empty strings
// and nil slices to its zeroVal. Their addresses are found once by boxing
// such values at run time (not constants, which the compiler boxes into
// read-only data).
var staticBoxes struct {
	once          sync.Once
	small0, small uintptr // [small0, small): staticuint64s
	zero          uintptr // &zeroVal[0]
}

//go:noinline
func boxUint64(v uint64) any { return v }

//go:noinline
func boxString(s string) any { return s }

//go:noinline
func boxBytes(b []byte) any { return b }

func dataWord(v any) uintptr { return uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1]) }

func isStaticBox(p unsafe.Pointer) bool {
	sb := &staticBoxes
	sb.once.Do(func() {
		lo, hi := dataWord(boxUint64(0)), dataWord(boxUint64(255))
		if hi-lo == 255*8 { // else the runtime no longer does this: count everything
			sb.small0, sb.small = lo, hi+8
		}
		if z := dataWord(boxString("")); z == dataWord(boxBytes(nil)) {
			sb.zero = z
		}
	})
	a := uintptr(p)
	return (a >= sb.small0 && a < sb.small) || (sb.zero != 0 && a == sb.zero)
}

// layout is what the walk needs to know about a type, worked out once per
// type so that the walk itself does no reflection but on interfaces.
type layout struct {
	t    reflect.Type
	kind reflect.Kind
	size uintptr
	// pointers says whether a value of the type contains pointers: whether
	// it can own heap memory at all, and whether the runtime scans it (a
	// type without pointers is "noscan": no malloc header, and tiny if
	// small).
	pointers bool
	// direct: the compiler stores a value of the type in an interface's
	// data word itself, because it is one word and that word is a pointer
	// (Go 1.26's rule; Go 1.22-1.25 agree for every type but a struct
	// padded with zero-size fields).
	direct bool
	elem   *layout       // Pointer, Slice, Array
	n      int           // Array length
	fields []fieldLayout // Struct: the fields with pointers
}

type fieldLayout struct {
	off uintptr
	l   *layout
}

// layouts caches layoutOf for every type seen (reflect.Type -> *layout);
// building holds a lock so that a recursive type is built once.
var (
	layouts     sync.Map
	layoutsMu   sync.Mutex
	layoutsMemo = map[reflect.Type]*layout{}
)

func layoutOf(t reflect.Type) *layout {
	if l, ok := layouts.Load(t); ok {
		return l.(*layout)
	}
	layoutsMu.Lock()
	defer layoutsMu.Unlock()
	l := buildLayout(t)
	layouts.Store(t, l)
	return l
}

// buildLayout builds under layoutsMu; layoutsMemo holds a type's layout
// before its elements are built, so a type that points to itself ends.
// Only pointer kinds can lead back to a type, and their pointers field
// is set before they recurse.
func buildLayout(t reflect.Type) *layout {
	if l, ok := layoutsMemo[t]; ok {
		return l
	}
	l := &layout{t: t, kind: t.Kind(), size: t.Size()}
	layoutsMemo[t] = l
	switch l.kind {
	case reflect.String, reflect.Interface, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		l.pointers = true
	case reflect.Pointer, reflect.Slice:
		l.pointers = true
		l.elem = buildLayout(t.Elem())
	case reflect.Array:
		l.elem, l.n = buildLayout(t.Elem()), t.Len()
		l.pointers = l.n > 0 && l.elem.pointers
	case reflect.Struct:
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if fl := buildLayout(f.Type); fl.pointers {
				l.fields = append(l.fields, fieldLayout{f.Offset, fl})
			}
		}
		l.pointers = len(l.fields) > 0
	}
	l.direct = l.size == ptrSize && l.pointers
	return l
}

// unmeasuredReasons returns the reasons of s in a stable order.
func (s ownedSample) unmeasuredReasons() []string {
	reasons := make([]string, 0, len(s.unmeasured))
	for r := range s.unmeasured {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	return reasons
}
