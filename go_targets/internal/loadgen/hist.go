package loadgen

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in nanoseconds: exact below 256ns,
// then 128 buckets per power of two (relative error below 0.8%). It is not
// safe for concurrent use; each worker keeps one and they are merged.
type hist struct {
	counts [256 + 56*128]uint64
	total  uint64
	max    uint64
}

func histIndex(v uint64) int {
	if v < 256 {
		return int(v)
	}
	s := bits.Len64(v) - 8 // ≥ 1
	top := v >> s          // in [128, 256)
	return 256 + (s-1)*128 + int(top-128)
}

// histBounds returns the [lo, hi) range of bucket i.
func histBounds(i int) (lo, hi uint64) {
	if i < 256 {
		return uint64(i), uint64(i) + 1
	}
	s := (i-256)/128 + 1
	top := uint64((i-256)%128 + 128)
	return top << s, (top + 1) << s
}

func (h *hist) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	h.total++
	h.max = max(h.max, v)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0 < q ≤ 1) as the midpoint of its bucket,
// capped at the maximum seen; 0 when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.999999)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			return time.Duration(min(lo+(hi-lo)/2, h.max))
		}
	}
	return time.Duration(h.max)
}
