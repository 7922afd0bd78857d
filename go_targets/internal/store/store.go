// Package store holds the container patterns of the seed article, one
// implementation per pattern, behind one interface the servers use.
//
// Each pattern is a generic Map[V] over the value type V; a Store adapts it to
// raw bytes from the network through a Codec[V]. The Go type a store reports
// (Info.GoType) is written in the reference model's syntax, so the comparator
// can ask the model what the container should cost.
package store

import (
	"errors"
	"fmt"
	"sort"
)

// Map is one container pattern holding string keys and V values.
// Implementations are safe for concurrent use, except racymap, whose point is
// that it is not.
type Map[V any] interface {
	// Store sets key to v and reports whether the key was new.
	Store(key string, v V) (created bool)
	// Load returns the value for key and whether it was present.
	Load(key string) (V, bool)
	// Delete removes key and reports whether it was present.
	Delete(key string) (existed bool)
	// Len returns the number of live entries.
	Len() int
	// Close stops any goroutine the store runs (ringbuffer) and releases it.
	Close() error
}

// Codec turns the bytes of a request body into a V and back.
type Codec[V any] interface {
	Decode(raw []byte) (V, error)
	Encode(v V) []byte
	// GoType is V in Go syntax, e.g. "[32]byte", "int64", "[]byte".
	GoType() string
}

// Info describes a store for metrics (mapquake_build_info) and for the model.
type Info struct {
	// Store is the pattern name, e.g. "syncmap".
	Store string
	// KeyType and ValueType are Go syntax: "string", "[32]byte".
	KeyType   string
	ValueType string
	// GoType is the whole container in the model's syntax, e.g.
	// "map[string]any(struct{Value [32]byte; Version uint64})".
	GoType string
}

// Store is a Map with its codec applied: what the HTTP and gRPC servers call.
type Store interface {
	// Put decodes raw with the store's codec and stores it under key.
	Put(key string, raw []byte) (created bool, err error)
	// Get returns the encoded value for key.
	Get(key string) ([]byte, bool)
	Delete(key string) (existed bool)
	Len() int
	// HighWater is the most entries the store has held since it started.
	HighWater() int
	Info() Info
	Close() error
}

// Options tune the patterns that have knobs; the zero value is valid.
type Options struct {
	// ValueType selects the codec: "[]byte" (default), "string", "int64",
	// or "[N]byte" with N in 8, 16, 32, 64, 128, 256.
	ValueType string
	// Shards is shardedmap's shard count (default 32).
	Shards int
	// RebuildEvery makes deleteretain copy its live entries into a fresh map
	// after this many deletes (0: never, the leak the seed describes).
	RebuildEvery int
	// RingSize is ringbuffer's per-key buffer length (default 8).
	RingSize int
	// RingLeak makes ringbuffer forget to stop a key's goroutine on delete,
	// reproducing the seed's goroutine leak.
	RingLeak bool
	// SliceBuffer makes subslice keep each []byte value as a slice of a
	// fresh buffer of this many bytes, pinning the whole buffer (0: values
	// are copied to their own size, the fix).
	SliceBuffer int
}

// ErrUnknownStore is returned by New for a name not in Names().
var ErrUnknownStore = errors.New("unknown store")

// ErrUnknownValueType is returned by New for a value type with no codec.
var ErrUnknownValueType = errors.New("unknown value type")

// Names lists every store New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(patterns))
	for name := range patterns {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// ValueTypes lists every value type New accepts.
func ValueTypes() []string {
	return []string{"[]byte", "string", "int64", "[8]byte", "[16]byte", "[32]byte", "[64]byte", "[128]byte", "[256]byte"}
}

// New builds the named store for the value type in opts.
func New(name string, opts Options) (Store, error) {
	build, ok := patterns[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: choose one of %v", ErrUnknownStore, name, Names())
	}
	if opts.ValueType == "" {
		opts.ValueType = "[]byte"
	}
	return build(opts)
}
