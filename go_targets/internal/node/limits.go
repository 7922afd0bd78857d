package node

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unicode/utf8"
)

// The limits both APIs share (maptarget's --max-value-bytes,
// --max-request-bytes and --max-inflight-bytes).
const (
	// DefaultMaxValueBytes is the largest value a write may carry (1 MiB):
	// an HTTP PUT body, one gRPC Put, one BatchPut or PutStream entry.
	DefaultMaxValueBytes = 1 << 20
	// DefaultMaxRequestBytes is the largest request (4 MiB): an HTTP body or
	// a gRPC message (the server's MaxRecvMsgSize), so a BatchPut carries a
	// few values at most.
	DefaultMaxRequestBytes = 4 << 20
	// DefaultMaxInflightBytes bounds the request bytes all handlers hold at
	// once (64 MiB); past it new requests are refused (503 over HTTP,
	// RESOURCE_EXHAUSTED over gRPC) until others finish.
	DefaultMaxInflightBytes = 64 << 20
)

// requestOverhead is what a one-value request needs beyond its value: the
// longest key and protobuf framing.
const requestOverhead = MaxKeyBytes + 1024

// MaxReplicateBatchBytes is the key and value bytes one Replicate call to a
// peer with limits l may carry.
func (l Limits) MaxReplicateBatchBytes() int64 { return l.MaxRequestBytes - requestOverhead }

// Limits bound what one request and all concurrent requests may hold.
type Limits struct {
	MaxValueBytes    int64
	MaxRequestBytes  int64
	MaxInflightBytes int64
}

// DefaultLimits are the limits of a node built by New.
func DefaultLimits() Limits {
	return Limits{DefaultMaxValueBytes, DefaultMaxRequestBytes, DefaultMaxInflightBytes}
}

// Check reports a limit set that cannot work.
func (l Limits) Check() error {
	switch {
	case l.MaxValueBytes <= 0 || l.MaxRequestBytes <= 0 || l.MaxInflightBytes <= 0:
		return errors.New("limits must be positive")
	case l.MaxRequestBytes < l.MaxValueBytes+requestOverhead:
		return fmt.Errorf("the request limit (%d bytes) must exceed the value limit (%d bytes) by %d bytes, room for a key",
			l.MaxRequestBytes, l.MaxValueBytes, requestOverhead)
	case l.MaxInflightBytes < l.MaxRequestBytes:
		return fmt.Errorf("the in-flight limit (%d bytes) is below the request limit (%d bytes)", l.MaxInflightBytes, l.MaxRequestBytes)
	}
	return nil
}

// ErrValueTooLarge is returned by Put for a value over MaxValueBytes.
var ErrValueTooLarge = errors.New("value too large")

// ErrBusy is returned by Acquire when the in-flight budget is spent.
var ErrBusy = errors.New("too many request bytes in flight; retry later")

// ValidateKey checks a key from a request, the one rule both APIs apply:
// 1 to MaxKeyBytes bytes of valid UTF-8.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrBadKey)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes, at most %d allowed", ErrBadKey, len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrBadKey)
	}
	return nil
}

// inflight is a weighted semaphore that never blocks: a request either fits
// in the budget now or is refused.
type inflight struct {
	limit int64
	used  atomic.Int64
}

func (s *inflight) tryAcquire(n int64) bool {
	for {
		cur := s.used.Load()
		if cur+n > s.limit {
			return false
		}
		if s.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Acquire reserves n bytes of the in-flight budget for one request; call
// release once the request's memory is no longer needed. It fails with
// ErrBusy (and reserves nothing) when the budget cannot hold n more bytes.
func (n *Node) Acquire(bytes int64) (release func(), err error) {
	if bytes <= 0 {
		return func() {}, nil
	}
	if !n.inflight.tryAcquire(bytes) {
		return nil, ErrBusy
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			n.inflight.used.Add(-bytes)
		}
	}, nil
}

// InflightBytes is the part of the budget held right now.
func (n *Node) InflightBytes() int64 { return n.inflight.used.Load() }

// Limits returns the node's limits.
func (n *Node) Limits() Limits { return n.limits }

// SetLimits replaces the limits; call it before serving. Zero fields keep
// their defaults.
func (n *Node) SetLimits(l Limits) {
	d := DefaultLimits()
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = d.MaxValueBytes
	}
	if l.MaxRequestBytes <= 0 {
		l.MaxRequestBytes = max(d.MaxRequestBytes, l.MaxValueBytes+requestOverhead)
	}
	if l.MaxInflightBytes <= 0 {
		l.MaxInflightBytes = max(d.MaxInflightBytes, l.MaxRequestBytes)
	}
	n.limits = l
	n.inflight.limit = l.MaxInflightBytes
}

func (n *Node) checkValue(value []byte) error {
	if int64(len(value)) > n.limits.MaxValueBytes {
		return fmt.Errorf("%w: value is %d bytes, at most %d allowed", ErrValueTooLarge, len(value), n.limits.MaxValueBytes)
	}
	return nil
}
