package store

import (
	"sync"
	"sync/atomic"
)

// syncMap stores values in a sync.Map, the seed's §2.3 pattern. On Go ≥ 1.24
// that is a hash-trie (no read/dirty double copy); on Go ≤ 1.23 it is the
// read/dirty pair whose promotion the seed warns about. Every value is boxed
// in an interface on Store.
//
// sync.Map has no Len, so an atomic counter keeps it: Swap and LoadAndDelete
// report atomically whether the key was there, which keeps the count exact
// under concurrency (a Load followed by a Store would not).
type syncMap[V any] struct {
	m   sync.Map
	len atomic.Int64
}

func newSyncMap[V any]() *syncMap[V] { return &syncMap[V]{} }

func syncMapGoType(value string, _ Options) string { return "sync.Map[string]" + value }

func (m *syncMap[V]) Store(key string, v V) bool {
	if _, loaded := m.m.Swap(key, v); loaded {
		return false
	}
	m.len.Add(1)
	return true
}

func (m *syncMap[V]) Load(key string) (V, bool) {
	v, ok := m.m.Load(key)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

func (m *syncMap[V]) Delete(key string) bool {
	if _, loaded := m.m.LoadAndDelete(key); !loaded {
		return false
	}
	m.len.Add(-1)
	return true
}

func (m *syncMap[V]) Len() int     { return int(m.len.Load()) }
func (m *syncMap[V]) Close() error { return nil }
