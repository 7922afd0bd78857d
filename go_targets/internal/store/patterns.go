package store

import "fmt"

// patterns is the registry New and Names read: one opener per pattern name.
// An opener first picks the codec for Options.ValueType, which fixes V, and
// then instantiates the pattern's generic Map for that V (see build).
var patterns = map[string]func(Options) (Store, error){
	"mutexmap":     opener("mutexmap", mutexMapGoType),
	"syncmap":      opener("syncmap", syncMapGoType),
	"shardedmap":   opener("shardedmap", shardedMapGoType),
	"ifacemap":     opener("ifacemap", ifaceMapGoType),
	"structmap":    opener("structmap", structMapGoType),
	"deleteretain": opener("deleteretain", retainMapGoType),
	"ptrcycle":     opener("ptrcycle", ptrCycleGoType),
	"ringbuffer":   opener("ringbuffer", ringMapGoType),
	"racymap":      opener("racymap", racyMapGoType),
	"subslice":     opener("subslice", subsliceMapGoType),
}

// build instantiates the named pattern for V. Go has no generic function
// values, so the registry above cannot hold the constructors themselves; this
// switch is the one place that maps names to them. TestEveryPatternBuilds
// checks that it covers every name in patterns.
func build[V any](name string, opts Options) Map[V] {
	switch name {
	case "mutexmap":
		return newMutexMap[V]()
	case "syncmap":
		return newSyncMap[V]()
	case "shardedmap":
		return newShardedMap[V](opts.Shards)
	case "ifacemap":
		return newIfaceMap[V]()
	case "structmap":
		return newStructMap[V]()
	case "deleteretain":
		return newRetainMap[V](opts.RebuildEvery)
	case "ptrcycle":
		return newPtrCycle[V]()
	case "ringbuffer":
		return newRingMap[V](opts.RingSize, opts.RingLeak)
	case "racymap":
		return newRacyMap[V]()
	case "subslice":
		return newSubsliceMap[V](opts.SliceBuffer)
	}
	panic("store: build has no case for pattern " + name)
}

// goTypeFunc spells a pattern's container in the model's syntax for a value
// type (already in Go syntax) and the options that shape it.
type goTypeFunc func(value string, opts Options) string

func opener(name string, goType goTypeFunc) func(Options) (Store, error) {
	return func(opts Options) (Store, error) {
		if err := checkOptions(&opts); err != nil {
			return nil, err
		}
		return openValueType(name, goType, opts)
	}
}

// checkOptions rejects negative knobs and fills in the defaults, so a
// pattern's constructor sees the values that Info.GoType reports.
func checkOptions(opts *Options) error {
	for _, knob := range []struct {
		name string
		v    int
	}{{"Shards", opts.Shards}, {"RebuildEvery", opts.RebuildEvery}, {"RingSize", opts.RingSize}, {"SliceBuffer", opts.SliceBuffer}} {
		if knob.v < 0 {
			return fmt.Errorf("store: Options.%s is %d, want 0 (default) or more", knob.name, knob.v)
		}
	}
	if opts.Shards == 0 {
		opts.Shards = defaultShards
	}
	if opts.RingSize == 0 {
		opts.RingSize = defaultRingSize
	}
	return nil
}

func openValueType(name string, goType goTypeFunc, opts Options) (Store, error) {
	switch opts.ValueType {
	case "[]byte":
		return adapt(name, goType, bytesCodec{}, opts), nil
	case "string":
		return adapt(name, goType, stringCodec{}, opts), nil
	case "int64":
		return adapt(name, goType, int64Codec{}, opts), nil
	case "[8]byte":
		return adapt(name, goType, bytes8Codec, opts), nil
	case "[16]byte":
		return adapt(name, goType, bytes16Codec, opts), nil
	case "[32]byte":
		return adapt(name, goType, bytes32Codec, opts), nil
	case "[64]byte":
		return adapt(name, goType, bytes64Codec, opts), nil
	case "[128]byte":
		return adapt(name, goType, bytes128Codec, opts), nil
	case "[256]byte":
		return adapt(name, goType, bytes256Codec, opts), nil
	}
	return nil, fmt.Errorf("%w %q: choose one of %v", ErrUnknownValueType, opts.ValueType, ValueTypes())
}

func adapt[V any](name string, goType goTypeFunc, codec Codec[V], opts Options) Store {
	return &adapter[V]{
		m:     build[V](name, opts),
		codec: codec,
		info: Info{
			Store:     name,
			KeyType:   "string",
			ValueType: codec.GoType(),
			GoType:    goType(codec.GoType(), opts),
		},
	}
}
