package main

import (
	"slices"
	"sync"
	"time"
)

// NameBytes is the longest item name, in bytes.
const NameBytes = 24

// Item is one stock-keeping unit. It is fixed-size and holds no pointers, so
// the items map is everything the items cost: 48 bytes of value per entry
// plus the map's own tables, which mapquake's model predicts exactly.
type Item struct {
	Qty        int64
	PriceCents int64
	// Updated is the last write's time in Unix nanoseconds, made strictly
	// increasing across the store so eviction order is deterministic.
	Updated int64
	// Name is UTF-8, zero-padded.
	Name [NameBytes]byte
}

// NameString returns the name without its padding.
func (it Item) NameString() string {
	n := len(it.Name)
	for n > 0 && it.Name[n-1] == 0 {
		n--
	}
	return string(it.Name[:n])
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
	SKU    uint64
	Before Item
	Kind   changeKind
}

// Store is the inventory: a map[uint64]Item guarded by a RWMutex, holding at
// most capacity items.
//
// When a new SKU arrives at capacity, the oldest-updated items are evicted in
// one batch of ceil(capacity/64), so the cost of finding them (a sort of the
// update times) is paid once per batch rather than on every insert.
type Store struct {
	mu        sync.RWMutex
	items     map[uint64]Item
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
	return &Store{items: make(map[uint64]Item), capacity: capacity, leak: leak, now: time.Now}
}

// Put stores it under sku (its Updated is set here) and reports whether the
// SKU is new and how many items were evicted to make room.
func (s *Store) Put(sku uint64, it Item) (created bool, evictedItems int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists := s.items[sku]
	if exists {
		s.record(sku, old, overwritten)
	} else if len(s.items) >= s.capacity {
		evictedItems = s.evictOldest((s.capacity + 63) / 64)
	}
	it.Updated = s.stamp()
	s.items[sku] = it
	if len(s.items) > s.highWater {
		s.highWater = len(s.items)
	}
	return !exists, evictedItems
}

// Get returns the item stored under sku.
func (s *Store) Get(sku uint64) (Item, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	it, ok := s.items[sku]
	return it, ok
}

// Delete removes sku and reports whether it was there.
func (s *Store) Delete(sku uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.items[sku]
	if ok {
		s.record(sku, old, deleted)
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

func (s *Store) record(sku uint64, before Item, kind changeKind) {
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
			s.record(sku, it, evicted)
			delete(s.items, sku)
		}
	}
	s.evictions += uint64(n)
	return n
}
