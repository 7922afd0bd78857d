package main

import (
	"sync"
	"time"
)

// session is what the service keeps per key: a pointer value in a
// map[string]*session, owning a user name of varying length and a token.
type session struct {
	User    string
	Token   []byte
	Created int64 // unix nanoseconds
	Expires int64 // unix nanoseconds; 0 in a store that keeps sessions
	Hits    uint32
}

// Store holds the sessions behind one mutex. With four maps, every key also
// lives in lastSeen, versions and index, as services that keep a key's
// metadata beside its value do; the four share each key's string bytes.
type Store struct {
	mu       sync.Mutex
	sessions map[string]*session
	lastSeen map[string]int64    // nil with one map
	versions map[string]uint64   // nil with one map
	index    map[string]struct{} // nil with one map
	high     int                 // the most sessions held at once
	expired  uint64
	ttl      time.Duration
	keep     bool // a cache that keeps every session (no expiry by design)
	now      func() time.Time
}

// NewStore makes an empty store. maps is 1 or 4; ttl is how long a session
// lives after its last write (ignored when keep is set).
func NewStore(maps int, ttl time.Duration, keep bool) *Store {
	s := &Store{sessions: map[string]*session{}, ttl: ttl, keep: keep, now: time.Now}
	if maps == 4 {
		s.lastSeen = map[string]int64{}
		s.versions = map[string]uint64{}
		s.index = map[string]struct{}{}
	}
	return s
}

// Put stores a session for key (replacing any), taking ownership of user and
// token. It reports whether the key is new.
func (s *Store) Put(key, user string, token []byte) bool {
	now := s.now().UnixNano()
	v := &session{User: user, Token: token, Created: now}
	if !s.keep {
		v.Expires = now + int64(s.ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, found := s.sessions[key]
	if found {
		v.Hits = old.Hits
	}
	s.sessions[key] = v
	if s.index != nil {
		s.index[key] = struct{}{}
		s.lastSeen[key] = now
		s.versions[key]++
	}
	s.high = max(s.high, len(s.sessions))
	return !found
}

// Get returns a copy of key's session, counting the hit.
func (s *Store) Get(key string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.sessions[key]
	if !ok {
		return session{}, false
	}
	v.Hits++
	if s.lastSeen != nil {
		s.lastSeen[key] = s.now().UnixNano()
	}
	return *v, true
}

// Expire deletes every session whose time is up and returns how many. A
// store that keeps sessions never expires any.
func (s *Store) Expire() int {
	if s.keep {
		return 0
	}
	now := s.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.sessions {
		if v.Expires <= now {
			delete(s.sessions, k)
			if s.index != nil {
				delete(s.index, k)
				delete(s.lastSeen, k)
				delete(s.versions, k)
			}
			n++
		}
	}
	s.expired += uint64(n)
	return n
}

// Len is the number of sessions (every map holds the same keys).
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// HighWater is the most sessions held at once: a Go map never shrinks, so
// its memory follows this, not Len.
func (s *Store) HighWater() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.high
}

// Expired is how many sessions have expired so far.
func (s *Store) Expired() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expired
}

// Maps are the store's maps by their mapprobe label (one or four).
func (s *Store) mapNames() []string {
	if s.index == nil {
		return []string{"sessions"}
	}
	return []string{"sessions", "last_seen", "versions", "key_index"}
}

// The iterator mapprobe samples entries with: it takes the lock itself, and
// stops when mapprobe has seen enough (yield returns false). Only the
// sessions map has one: the other maps hold the same key strings, and a
// sample of each would charge those bytes once per map.

func (s *Store) eachSession(yield func(string, *session) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.sessions {
		if !yield(k, v) {
			return
		}
	}
}
