package store

// subsliceMap is the second half of the seed's §2.5: a value that is a slice
// of a bigger buffer keeps the whole buffer alive. A server that reads each
// value into a fresh fixed-size buffer (bufSize bytes, say 4 KiB) and stores
// buf[:n] holds 4 KiB per entry however short the values are: the map's slot
// points into the buffer, so the GC must keep all of it.
//
// The fix, with Options.SliceBuffer 0, stores a copy of exactly the value's
// length (what bytes.Clone gives). Only []byte values can be slices of a
// buffer; other value types are stored as they are.
type subsliceMap[V any] struct {
	*mutexMap[V] // Load, Delete, Len and Close as is; Store keeps the buffer
	bufSize      int
}

func newSubsliceMap[V any](bufSize int) *subsliceMap[V] {
	return &subsliceMap[V]{mutexMap: newMutexMap[V](), bufSize: bufSize}
}

// subsliceMapGoType is a plain map: the buffer behind each value is not in the
// type (the model takes it from the slice_buffer option).
func subsliceMapGoType(value string, _ Options) string { return "map[string]" + value }

// retain gives v as the leaky server keeps it: the first len(v) bytes of a new
// buffer of bufSize bytes (or of len(v), if longer).
func (m *subsliceMap[V]) retain(v V) V {
	b, ok := any(v).([]byte)
	if !ok || m.bufSize == 0 {
		return v
	}
	buf := make([]byte, max(m.bufSize, len(b)))
	n := copy(buf, b)
	return any(buf[:n]).(V)
}

func (m *subsliceMap[V]) Store(key string, v V) bool { return m.mutexMap.Store(key, m.retain(v)) }
