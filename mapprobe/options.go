package mapprobe

import (
	"reflect"
)

// Option adjusts a registration.
type Option func(*config)

type config struct {
	highWater   func() int
	dynamicType reflect.Type // WithDynamicValueType's T
	goType      string       // WithGoType's override
}

func newConfig(opts []Option) config {
	var c config
	for _, opt := range opts {
		opt(&c)
	}
	return c
}

// WithHighWater exports mapquake_store_high_water_entries from highWater,
// the most entries the map has held. Pass it whenever the map sees deletes:
// the map's memory follows its high-water mark, not its current size.
// highWater is called at scrape time and must be safe for concurrent use.
func WithHighWater(highWater func() int) Option {
	return func(c *config) { c.highWater = highWater }
}

// WithDynamicValueType says which concrete type T the map's interface-typed
// values hold, so the model can price the boxing: a map[string]any holding
// int64 values is rendered map[string]any(int64). The value type V given to
// Register or RegisterSyncMap must be an interface type.
func WithDynamicValueType[T any]() Option {
	return func(c *config) { c.dynamicType = reflect.TypeFor[T]() }
}

// WithGoType replaces the derived go_type label, for containers the
// generic functions cannot describe (a struct of maps, a map of slices of a
// known length). key_type and value_type are still derived.
func WithGoType(goType string) Option {
	return func(c *config) { c.goType = goType }
}
