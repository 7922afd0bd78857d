package store

import "sync"

// ifaceMap is the seed's §2.4 anti-pattern: a map[string]any whose values are
// records. Every Store boxes a fresh record[V] in the interface, a separate
// heap object per entry on top of the map's 16-byte interface slot. Compare
// structMap, which stores the same record inline.
type ifaceMap[V any] struct {
	mu sync.RWMutex
	m  map[string]any
}

func newIfaceMap[V any]() *ifaceMap[V] { return &ifaceMap[V]{m: make(map[string]any)} }

func ifaceMapGoType(value string, _ Options) string {
	return "map[string]any(" + recordGoType(value) + ")"
}

func (m *ifaceMap[V]) Store(key string, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, existed := m.m[key]
	var version uint64
	if existed {
		version = old.(record[V]).Version
	}
	m.m[key] = record[V]{Value: v, Version: version + 1}
	return !existed
}

func (m *ifaceMap[V]) Load(key string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	return r.(record[V]).Value, true
}

func (m *ifaceMap[V]) Delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.m[key]
	delete(m.m, key)
	return existed
}

func (m *ifaceMap[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

func (m *ifaceMap[V]) Close() error { return nil }
