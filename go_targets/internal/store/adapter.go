package store

import "sync/atomic"

// adapter turns a Map[V] and a Codec[V] into the byte-level Store the servers
// call. It also tracks the high-water mark, because maps never shrink: the
// model needs the most entries a store ever held, not only how many it holds.
type adapter[V any] struct {
	m     Map[V]
	codec Codec[V]
	info  Info
	high  atomic.Int64
}

func (a *adapter[V]) Put(key string, raw []byte) (bool, error) {
	v, err := a.codec.Decode(raw)
	if err != nil {
		return false, err
	}
	created := a.m.Store(key, v)
	if created {
		a.raiseHighWater(int64(a.m.Len()))
	}
	return created, nil
}

// raiseHighWater is an atomic max: concurrent Puts may each observe a
// different Len, and the largest one must win.
func (a *adapter[V]) raiseHighWater(n int64) {
	for {
		old := a.high.Load()
		if n <= old || a.high.CompareAndSwap(old, n) {
			return
		}
	}
}

func (a *adapter[V]) Get(key string) ([]byte, bool) {
	v, ok := a.m.Load(key)
	if !ok {
		return nil, false
	}
	return a.codec.Encode(v), true
}

func (a *adapter[V]) Delete(key string) bool { return a.m.Delete(key) }
func (a *adapter[V]) Len() int               { return a.m.Len() }
func (a *adapter[V]) HighWater() int         { return int(a.high.Load()) }
func (a *adapter[V]) Info() Info             { return a.info }
func (a *adapter[V]) Close() error           { return a.m.Close() }
