package store

import "sync"

// structMap is the fix for ifaceMap: the same record[V], stored inline in the
// map's slots with its static type, so no per-entry box is allocated.
type structMap[V any] struct {
	mu sync.RWMutex
	m  map[string]record[V]
}

func newStructMap[V any]() *structMap[V] { return &structMap[V]{m: make(map[string]record[V])} }

func structMapGoType(value string, _ Options) string { return "map[string]" + recordGoType(value) }

func (m *structMap[V]) Store(key string, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, existed := m.m[key]
	m.m[key] = record[V]{Value: v, Version: old.Version + 1}
	return !existed
}

func (m *structMap[V]) Load(key string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.m[key]
	return r.Value, ok
}

func (m *structMap[V]) Delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.m[key]
	delete(m.m, key)
	return existed
}

func (m *structMap[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

func (m *structMap[V]) Close() error { return nil }
