package store

import "sync"

// retainMap is the seed's §2.5 pattern: delete never gives memory back,
// because Go maps never shrink (not on delete, not when empty, not on clear).
// A map that once held a million entries keeps a million entries' worth of
// tables.
//
// The fix, enabled by Options.RebuildEvery > 0, is to copy the live entries
// into a fresh map after that many deletes and drop the old one, whose tables
// the GC then frees. The copy is a plain loop on purpose: maps.Clone keeps the
// source's table layout, so it would copy the bloat too.
type retainMap[V any] struct {
	mu           sync.RWMutex
	m            map[string]V
	rebuildEvery int
	deletes      int // deletes since the last rebuild
}

func newRetainMap[V any](rebuildEvery int) *retainMap[V] {
	return &retainMap[V]{m: make(map[string]V), rebuildEvery: rebuildEvery}
}

// retainMapGoType is a plain map: what differs is the entry count the model
// must use, the high-water mark without rebuilds and the live count with.
func retainMapGoType(value string, _ Options) string { return "map[string]" + value }

func (m *retainMap[V]) Store(key string, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.m[key]
	m.m[key] = v
	return !existed
}

func (m *retainMap[V]) Load(key string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[key]
	return v, ok
}

func (m *retainMap[V]) Delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, existed := m.m[key]; !existed {
		return false
	}
	delete(m.m, key)
	m.deletes++
	if m.rebuildEvery > 0 && m.deletes >= m.rebuildEvery {
		m.rebuild()
	}
	return true
}

// rebuild replaces the map by a right-sized copy of its live entries.
// The caller holds mu for writing.
func (m *retainMap[V]) rebuild() {
	fresh := make(map[string]V, len(m.m))
	for k, v := range m.m {
		fresh[k] = v
	}
	m.m = fresh
	m.deletes = 0
}

func (m *retainMap[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

func (m *retainMap[V]) Close() error { return nil }
