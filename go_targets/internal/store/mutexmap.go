package store

import "sync"

// mutexMap is the textbook safe map: a built-in map behind a sync.RWMutex.
// It is the baseline every other pattern is compared with.
type mutexMap[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func newMutexMap[V any]() *mutexMap[V] { return &mutexMap[V]{m: make(map[string]V)} }

func mutexMapGoType(value string, _ Options) string { return "map[string]" + value }

func (m *mutexMap[V]) Store(key string, v V) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.m[key]
	m.m[key] = v
	return !existed
}

func (m *mutexMap[V]) Load(key string) (V, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v, ok := m.m[key]
	return v, ok
}

func (m *mutexMap[V]) Delete(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.m[key]
	delete(m.m, key)
	return existed
}

func (m *mutexMap[V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}

func (m *mutexMap[V]) Close() error { return nil }
