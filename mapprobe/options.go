package mapprobe

import (
	"reflect"
	"unsafe"
)

// Option adjusts a registration.
type Option func(*config)

type config struct {
	highWater   func() int
	dynamicType reflect.Type // WithDynamicValueType's T
	goType      string       // WithGoType's override
	entries     *entrySampler
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// WithHighWater exports mapquake_store_high_water_entries from highWater,
// the most entries the map has held. Pass it whenever the map sees deletes:
// the map's memory follows its high-water mark, not its current size.
// highWater is called at scrape time and must be safe for concurrent use.
func WithHighWater(highWater func() int) Option {
	return func(c *config) { c.highWater = highWater }
}

// WithDynamicValueType says which concrete type T the map's interface-typed
// values hold, so the model can price the boxing: a map[string]any holding
// int64 values is rendered map[string]any(int64). The value type V given to
// Register or RegisterSyncMap must be an interface type.
func WithDynamicValueType[T any]() Option {
	return func(c *config) { c.dynamicType = reflect.TypeFor[T]() }
}

// WithGoType replaces the derived go_type label, for containers the
// generic functions cannot describe (a struct of maps, a map of slices of a
// known length). key_type and value_type are still derived.
func WithGoType(goType string) Option {
	return func(c *config) { c.goType = goType }
}

// WithEntries measures what the map's entries own on the heap beyond the
// map itself, so the model can attribute it to the map: the bytes behind
// string keys and values, slices' backing arrays, the objects pointer
// values point to (and what those own in turn), the boxes of interface
// values. Pass it for any map whose key or value is, or contains, a
// string, slice, pointer or interface (map[string]*Session is the common
// case); a map of fixed-size values such as map[uint64][32]byte owns
// nothing beyond its slots and does not need it.
//
// entries has the shape of iter.Seq2[K, V]: it takes the lock that guards
// the map, ranges over the map calling yield for each entry, stops when
// yield returns false, and releases the lock:
//
//	mapprobe.WithEntries(func(yield func(string, *Session) bool) {
//		mu.Lock()
//		defer mu.Unlock()
//		for k, v := range sessions {
//			if !yield(k, v) {
//				return
//			}
//		}
//	})
//
// At every scrape mapprobe takes the first 256 entries entries yields (a
// range over a Go map starts at a random place, so this is a fresh sample
// each time) and walks them by reflection while the lock is held, which is
// why yield must be called with the lock held and the walk must be short:
// tens of microseconds for 256 entries of map[string]*T. Each object is
// charged its Go allocator size class, once however many entries share it.
// The walk reads (never writes) the entries and stops after 8 pointer
// hops; it does not look into maps, channels, funcs or unsafe.Pointers held
// by an entry (mapquake_store_entry_owned_unmeasured_refs counts them).
// The interface box an any(T) value type or a sync.Map already implies is
// not charged again.
//
// For a sync.Map, range it with Range and yield each key and value
// asserted to K and V. K and V must be the map's own types: Register and
// RegisterSyncMap refuse others; RegisterShape accepts any.
func WithEntries[K comparable, V any](entries func(yield func(K, V) bool)) Option {
	kt, vt := reflect.TypeFor[K](), reflect.TypeFor[V]()
	s := &entrySampler{keyType: kt, valueType: vt, keyLayout: layoutOf(kt), valueLayout: layoutOf(vt)}
	if entries != nil {
		s.run = func(w *walker) {
			entries(func(k K, v V) bool {
				if w.full() { // an iterator that did not stop when told
					return false
				}
				w.entry(unsafe.Pointer(&k), unsafe.Pointer(&v))
				return !w.full()
			})
		}
	}
	return func(c *config) { c.entries = s }
}
