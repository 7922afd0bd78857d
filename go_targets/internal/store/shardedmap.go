package store

import (
	"fmt"
	"hash/maphash"
	"sync"
)

const defaultShards = 32

// shardedMap splits the key space over Options.Shards mutex-guarded maps, the
// usual fix for lock contention on a hot mutexmap. A key's shard is chosen by
// hash/maphash (the runtime's own AES-based string hash), with a seed per
// store so shard choice cannot be predicted by clients.
type shardedMap[V any] struct {
	seed   maphash.Seed
	shards []shard[V]
}

// shard is padded to 64 bytes (a cache line) so neighbouring shards' locks
// do not false-share: RWMutex 24 + map pointer 8 + 32 of padding.
type shard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
	_  [32]byte
}

func newShardedMap[V any](n int) *shardedMap[V] {
	s := &shardedMap[V]{seed: maphash.MakeSeed(), shards: make([]shard[V], n)}
	for i := range s.shards {
		s.shards[i].m = make(map[string]V)
	}
	return s
}

// shardedMapGoType reports the maps only, as an array of S maps: the model
// predicts map memory, and the shard slice itself (S×64 bytes, allocated
// once) is constant overhead outside what it measures.
func shardedMapGoType(value string, opts Options) string {
	return fmt.Sprintf("[%d]map[string]%s", opts.Shards, value)
}

func (s *shardedMap[V]) shard(key string) *shard[V] {
	return &s.shards[maphash.String(s.seed, key)%uint64(len(s.shards))]
}

func (s *shardedMap[V]) Store(key string, v V) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, existed := sh.m[key]
	sh.m[key] = v
	return !existed
}

func (s *shardedMap[V]) Load(key string) (V, bool) {
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	v, ok := sh.m[key]
	return v, ok
}

func (s *shardedMap[V]) Delete(key string) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	_, existed := sh.m[key]
	delete(sh.m, key)
	return existed
}

// Len sums the shards one at a time, so under concurrent writes it is a
// count that was true of each shard at some moment, not one global snapshot.
func (s *shardedMap[V]) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

func (s *shardedMap[V]) Close() error { return nil }
