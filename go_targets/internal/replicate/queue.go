package replicate

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
)

// QueueKind selects what a peer's queue does when the peer cannot keep up.
type QueueKind int

const (
	// Bounded holds at most Capacity ops; when full, new ops are dropped and
	// counted in mapquake_replication_dropped_total.
	Bounded QueueKind = iota
	// Unbounded never drops: a cut peer grows the backlog without limit, at
	// a cost the reference model can predict (see OpSlotBytes).
	Unbounded
)

var queueKindNames = []string{"bounded", "unbounded"}

func (k QueueKind) String() string { return queueKindNames[k] }

// QueueKinds lists the names ParseQueueKind accepts.
func QueueKinds() []string { return append([]string(nil), queueKindNames...) }

// ParseQueueKind parses "bounded" or "unbounded".
func ParseQueueKind(s string) (QueueKind, error) {
	for i, n := range queueKindNames {
		if s == n {
			return QueueKind(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not one of: %s", s, strings.Join(queueKindNames, ", "))
}

// Kind is the kind of a replicated write.
type Kind uint8

// Kinds of writes.
const (
	KindPut Kind = iota + 1
	KindDelete
)

// op is one queued write. Key and value are copied into one buffer owned by
// the queue (buf = key bytes followed by value bytes), so the queue's memory
// does not depend on what the store keeps of the request.
type op struct {
	buf  []byte
	klen uint32
	kind Kind
}

func (o *op) key() string   { return string(o.buf[:o.klen]) }
func (o *op) value() []byte { return o.buf[o.klen:] }

// OpSlotBytes is the size of one queue slot (the op struct): 32 bytes on
// 64-bit platforms.
const OpSlotBytes = int(unsafe.Sizeof(op{}))

// ChunkOps is how many slots the queue allocates at a time. 1024 slots of
// 32 bytes make a 32 KiB chunk, a large object of exactly 4 pages (no size
// class rounding, no malloc header).
const ChunkOps = 1024

// Memory cost of a backlog of n ops for one peer, on 64-bit Go:
//
//	chunks:   ceil(n/ChunkOps) × 32768 bytes (amortised 32 B per op)
//	payloads: Σ sizeclass(len(key)+len(value)) per op (a noscan []byte; no
//	          allocation when key and value are both empty)
//	index:    8 bytes per chunk for the chunk-pointer slice (negligible)
//
// mapquake_replication_backlog_bytes reports the logical part,
// Σ (OpSlotBytes + len(key) + len(value)), without size-class rounding or
// the partly filled last chunk. An empty queue holds no memory.

type chunk [ChunkOps]op

// queue is a FIFO of ops in fixed-size chunks. Ops stay queued while they
// are in flight; the single sender pops them once the peer acknowledged.
type queue struct {
	mu       sync.Mutex
	chunks   []*chunk
	head     int // index of the first op in chunks[0]
	tail     int // index of the next free slot in the last chunk
	n        int
	bytes    int64
	capacity int // 0: unbounded
	// m's backlog gauges change under mu, so a scrape never sees them
	// disagree with the queue (e.g. negative while a push is half done).
	m metrics.PeerMetrics

	notify chan struct{} // buffered(1): wakes the sender
}

func newQueue(capacity int, m metrics.PeerMetrics) *queue {
	return &queue{capacity: capacity, m: m, notify: make(chan struct{}, 1)}
}

// push appends a copy of (kind, key, value). It returns false, and counts a
// drop, when a bounded queue is full.
func (q *queue) push(kind Kind, key string, value []byte) bool {
	var buf []byte
	if size := len(key) + len(value); size > 0 {
		buf = make([]byte, size)
		copy(buf[copy(buf, key):], value)
	}
	q.mu.Lock()
	if q.capacity > 0 && q.n >= q.capacity {
		q.m.Dropped.Inc()
		q.mu.Unlock()
		return false
	}
	if len(q.chunks) == 0 || q.tail == ChunkOps {
		q.chunks = append(q.chunks, new(chunk))
		q.tail = 0
	}
	q.chunks[len(q.chunks)-1][q.tail] = op{buf: buf, klen: uint32(len(key)), kind: kind}
	q.tail++
	q.n++
	added := OpSlotBytes + len(buf)
	q.bytes += int64(added)
	q.m.Backlog.Inc()
	q.m.BacklogBytes.Add(float64(added))
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

// peek appends up to max ops from the front to dst without removing them.
func (q *queue) peek(dst []op, max int) []op {
	q.mu.Lock()
	defer q.mu.Unlock()
	i, c := q.head, 0
	for len(dst) < max && c < len(q.chunks) {
		end := ChunkOps
		if c == len(q.chunks)-1 {
			end = q.tail
		}
		if i >= end {
			break
		}
		take := min(end-i, max-len(dst))
		dst = append(dst, q.chunks[c][i:i+take]...)
		i += take
		if i == ChunkOps {
			i, c = 0, c+1
		}
	}
	return dst
}

// pop removes the first k ops (acknowledged by the peer).
func (q *queue) pop(k int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var removed int64
	popped := 0
	for ; k > 0 && q.n > 0; k-- {
		popped++
		o := &q.chunks[0][q.head]
		removed += int64(OpSlotBytes + len(o.buf))
		*o = op{}
		q.head++
		q.n--
		if q.head == ChunkOps {
			q.chunks[0] = nil
			q.chunks = q.chunks[1:]
			q.head = 0
		}
	}
	if q.n == 0 { // release everything: an empty queue holds no memory
		q.chunks, q.head, q.tail = nil, 0, 0
	}
	q.bytes -= removed
	q.m.Backlog.Sub(float64(popped))
	q.m.BacklogBytes.Sub(float64(removed))
	q.m.Sent.Add(float64(popped))
}

// len returns the number of queued ops and their logical bytes.
func (q *queue) len() (int, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.bytes
}
