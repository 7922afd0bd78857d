package store

// racyMap is the seed's §4.1 pattern: a map written from many goroutines with
// no lock. The seed says this causes a data race or an invalid-address panic;
// in fact the runtime detects concurrent writers and kills the process with
// the unrecoverable "fatal error: concurrent map writes". The racymap
// scenario expects exactly that death. Sequential use works like mutexmap.
//
// Store and Delete compare len before and after instead of looking the key up
// first, so a racing Store can only ever trip the write check ("concurrent
// map writes"), never the read check ("concurrent map read and map write").
type racyMap[V any] struct {
	m map[string]V
}

func newRacyMap[V any]() *racyMap[V] { return &racyMap[V]{m: make(map[string]V)} }

func racyMapGoType(value string, _ Options) string { return "map[string]" + value }

func (m *racyMap[V]) Store(key string, v V) bool {
	n := len(m.m)
	m.m[key] = v
	return len(m.m) > n
}

func (m *racyMap[V]) Load(key string) (V, bool) {
	v, ok := m.m[key]
	return v, ok
}

func (m *racyMap[V]) Delete(key string) bool {
	n := len(m.m)
	delete(m.m, key)
	return len(m.m) < n
}

func (m *racyMap[V]) Len() int     { return len(m.m) }
func (m *racyMap[V]) Close() error { return nil }
