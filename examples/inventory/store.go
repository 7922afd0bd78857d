package main

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// NameBytes is the longest item name, in bytes.
const NameBytes = 24

// Item is one stock-keeping unit. The items map holds a pointer to each, so
// an item costs its map slot (a string key and a pointer) plus what the
// entry owns on the heap: the Item itself, its name's bytes and the SKU's
// bytes. mapprobe measures the owned part on a sample of entries
// (WithEntries), and mapquake's model prices the slots.
type Item struct {
	Qty        int64
	PriceCents int64
	// Updated is the last write's time in Unix nanoseconds, made strictly
	// increasing across the store so eviction order is deterministic.
	Updated int64
	// Name is 1 to NameBytes bytes of UTF-8.
	Name string
}

// changeKind says why an item left the map (or was replaced in it).
type changeKind uint8

const (
	overwritten changeKind = iota + 1
	evicted
	deleted
)

// change is one entry of the change history that --leak keeps.
type change struct {
	SKU    string
	Before Item
	Kind   changeKind
}

// Store is the inventory: a map[string]*Item from SKU to item, guarded by a
// RWMutex, holding at most capacity items.
//
// When a new SKU arrives at capacity, the oldest-updated items are evicted in
// one batch of ceil(capacity/64), so the cost of finding them (a sort of the
// update times) is paid once per batch rather than on every insert.
type Store struct {
	mu        sync.RWMutex
	items     map[string]*Item
	capacity  int
	highWater int
	last      int64 // the newest Updated handed out
	evictions uint64
	now       func() time.Time

	// leak turns on the change history: every overwritten, evicted or
	// deleted item is appended to history, which nothing ever trims. It is
	// the bug --leak plants: an audit trail someone meant to ship somewhere
	// and never did. Without leak, history stays nil.
	leak    bool
	history []change
}

// NewStore returns an empty store; capacity must be at least 1.
func NewStore(capacity int, leak bool) *Store {
	return &Store{items: make(map[string]*Item), capacity: capacity, leak: leak, now: time.Now}
}

// Put stores it under sku (its Updated is set here) and reports whether the
// SKU is new and how many items were evicted to make room.
//
// An overwrite updates the stored Item in place: the map is not assigned
// again, so the entry keeps its key and its Item. A new SKU's key is a copy
// of sku: a request's path values are substrings of its URL, and a key
// sliced from one would keep the whole URL alive.
func (s *Store) Put(sku string, it Item) (created bool, evictedItems int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it.Updated = s.stamp()
	if old, exists := s.items[sku]; exists {
		s.record(sku, *old, overwritten)
		*old = it
		return false, 0
	}
	if len(s.items) >= s.capacity {
		evictedItems = s.evictOldest((s.capacity + 63) / 64)
	}
	s.items[strings.Clone(sku)] = &it
	if len(s.items) > s.highWater {
		s.highWater = len(s.items)
	}
	return true, evictedItems
}

// Get returns a copy of the item stored under sku.
func (s *Store) Get(sku string) (Item, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if it, ok := s.items[sku]; ok {
		return *it, true
	}
	return Item{}, false
}

// Delete removes sku and reports whether it was there.
func (s *Store) Delete(sku string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[sku]
	if ok {
		s.record(sku, *old, deleted)
		delete(s.items, sku)
	}
	return ok
}

// Len is the number of items (mapquake_store_entries).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.items)
}

// HighWater is the most items the map has held
// (mapquake_store_high_water_entries): Go maps do not shrink.
func (s *Store) HighWater() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.highWater
}

// Entries ranges over the items under the read lock, until yield returns
// false: the iterator mapprobe.WithEntries samples at each scrape to measure
// what an entry owns. yield must not call back into the store.
func (s *Store) Entries(yield func(string, *Item) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for sku, it := range s.items {
		if !yield(sku, it) {
			return
		}
	}
}

// Evictions counts the items evicted so far.
func (s *Store) Evictions() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.evictions
}

// HistoryLen is the length of the change history (always 0 without leak).
func (s *Store) HistoryLen() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.history)
}

// record keeps a copy of the item before the change (its name string and
// the map's key stay reachable from the history). Called with mu held.
func (s *Store) record(sku string, before Item, kind changeKind) {
	if s.leak {
		s.history = append(s.history, change{SKU: sku, Before: before, Kind: kind})
	}
}

// stamp returns the current time in Unix nanoseconds, made strictly greater
// than every stamp before it. Called with mu held.
func (s *Store) stamp() int64 {
	t := s.now().UnixNano()
	if t <= s.last {
		t = s.last + 1
	}
	s.last = t
	return t
}

// evictOldest removes the n oldest-updated items (all of them if there are
// fewer). Update stamps are unique, so exactly n go. Called with mu held.
func (s *Store) evictOldest(n int) int {
	if n >= len(s.items) {
		n = len(s.items)
	}
	if n == 0 {
		return 0
	}
	stamps := make([]int64, 0, len(s.items))
	for _, it := range s.items {
		stamps = append(stamps, it.Updated)
	}
	slices.Sort(stamps)
	cutoff := stamps[n-1]
	for sku, it := range s.items {
		if it.Updated <= cutoff {
			s.record(sku, *it, evicted)
			delete(s.items, sku)
		}
	}
	s.evictions += uint64(n)
	return n
}
