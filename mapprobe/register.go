package mapprobe

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Shape is a container's type as the model reads it, in Go syntax (see the
// package documentation): the labels of mapquake_store_info.
type Shape struct {
	// GoType is the whole container, e.g. "map[string]any(int64)".
	GoType string
	// KeyType and ValueType are the key and value as stored, e.g. "string"
	// and "any(int64)".
	KeyType   string
	ValueType string
}

// Register exports the metrics for a built-in map[K]V whose size length
// reports. length is called at every scrape and must be safe for concurrent
// use (take the lock that guards the map). The type labels are derived from
// K and V; see WithDynamicValueType for interface-typed values.
func Register[K comparable, V any](reg prometheus.Registerer, length func() int, opts ...Option) error {
	c := newConfig(opts)
	value, err := valueType[V](c)
	if err != nil {
		return err
	}
	key := TypeString(reflect.TypeFor[K]())
	shape := Shape{GoType: "map[" + key + "]" + value, KeyType: key, ValueType: value}
	if err := entriesMatch[K, V](c, "Register"); err != nil {
		return err
	}
	// An any(T) slot's box is priced by the model.
	return register(reg, length, shape, c, false, c.dynamicType != nil)
}

// RegisterSyncMap exports the metrics for a sync.Map storing K keys and V
// values. sync.Map has no length, so the caller keeps one (an atomic counter
// updated on LoadOrStore/LoadAndDelete results) and passes it as length.
// The go_type label is "sync.Map[K]V"; the model adds the boxing every
// sync.Map store does.
func RegisterSyncMap[K comparable, V any](reg prometheus.Registerer, length func() int, opts ...Option) error {
	c := newConfig(opts)
	value := TypeString(reflect.TypeFor[V]())
	if c.dynamicType != nil {
		if err := needInterface[V](); err != nil {
			return err
		}
		value = TypeString(c.dynamicType) // sync.Map boxes anyway: V is the dynamic type
	}
	key := TypeString(reflect.TypeFor[K]())
	shape := Shape{GoType: "sync.Map[" + key + "]" + value, KeyType: key, ValueType: value}
	if err := entriesMatch[K, V](c, "RegisterSyncMap"); err != nil {
		return err
	}
	// The model boxes every concrete key and value a sync.Map stores; an
	// interface K or V is stored as it is, unless WithDynamicValueType named
	// the value's dynamic type, which the model then boxes.
	return register(reg, length, shape, c, false, c.dynamicType != nil)
}

// RegisterShape exports the metrics for a container described by hand, for
// callers that know their type as a string rather than as type parameters
// (maptarget, whose store is chosen by a flag). WithGoType and
// WithDynamicValueType do not apply; shape says it all.
func RegisterShape(reg prometheus.Registerer, length func() int, shape Shape, opts ...Option) error {
	if shape.GoType == "" || shape.KeyType == "" || shape.ValueType == "" {
		return fmt.Errorf("mapprobe: shape %+v: GoType, KeyType and ValueType are all required", shape)
	}
	c := newConfig(opts)
	c.goType = ""
	// The model prices a box for an any(T) slot and for every concrete key
	// and value of a sync.Map; an entry's interface box is then not charged
	// again.
	syncMap := strings.HasPrefix(shape.GoType, "sync.Map[")
	pricedBox := func(t string) bool {
		return strings.HasPrefix(t, "any(") || (syncMap && t != "any" && !strings.HasPrefix(t, "interface"))
	}
	return register(reg, length, shape, c, pricedBox(shape.KeyType), pricedBox(shape.ValueType))
}

// entriesMatch refuses a WithEntries whose K and V are not the map's.
func entriesMatch[K comparable, V any](c config, fn string) error {
	if c.entries == nil {
		return nil
	}
	k, v := reflect.TypeFor[K](), reflect.TypeFor[V]()
	if c.entries.keyType != k || c.entries.valueType != v {
		return fmt.Errorf("mapprobe: %s[%s, %s] got WithEntries[%s, %s]: the iterator must yield the map's own key and value types",
			fn, k, v, c.entries.keyType, c.entries.valueType)
	}
	return nil
}

// valueType renders V for a built-in map, as any(T) when the caller named the
// dynamic type of interface-typed values.
func valueType[V any](c config) (string, error) {
	if c.dynamicType == nil {
		return TypeString(reflect.TypeFor[V]()), nil
	}
	if err := needInterface[V](); err != nil {
		return "", err
	}
	return "any(" + TypeString(c.dynamicType) + ")", nil
}

func needInterface[V any]() error {
	if t := reflect.TypeFor[V](); t.Kind() != reflect.Interface {
		return fmt.Errorf("mapprobe: WithDynamicValueType needs an interface value type, but V is %s", t)
	}
	return nil
}

// register builds the collector; skipKeyBox and skipValueBox say the
// model already prices the interface box of an entry's key or value.
func register(reg prometheus.Registerer, length func() int, shape Shape, c config, skipKeyBox, skipValueBox bool) error {
	if reg == nil || length == nil {
		return errors.New("mapprobe: the registerer and the length function are required")
	}
	if c.goType != "" {
		shape.GoType = c.goType
	}
	col := &collector{length: length, highWater: c.highWater, shape: shape}
	if c.entries != nil {
		if c.entries.run == nil {
			return errors.New("mapprobe: WithEntries needs an iterator over the map's entries, got nil")
		}
		s := *c.entries // the Option may be reused for another registration
		s.skipKeyBox, s.skipValueBox = skipKeyBox, skipValueBox
		col.entries = &s
	}
	return reg.Register(col)
}
