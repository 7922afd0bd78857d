package mapprobe

import (
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchSession is a typical cache value: a struct with strings, reached
// through a pointer.
type benchSession struct {
	User    string
	Token   string
	Expires int64
	Hits    int64
}

// BenchmarkCollectWithEntries is one scrape of a map[string]*benchSession
// of 100k entries: the cost WithEntries adds is the difference between the
// two sub-benchmarks (the 256-entry walk, under the map's lock).
func BenchmarkCollectWithEntries(b *testing.B) {
	const n = 100000
	var mu sync.Mutex
	m := make(map[string]*benchSession, n)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("session-%012d", i)
		m[k] = &benchSession{User: fmt.Sprintf("user-%d", i%5000), Token: fmt.Sprintf("%032x", i), Expires: int64(i)}
	}
	length := func() int { mu.Lock(); defer mu.Unlock(); return len(m) }
	iter := func(yield func(string, *benchSession) bool) {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range m {
			if !yield(k, v) {
				return
			}
		}
	}
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"without", nil},
		{"with", []Option{WithEntries(iter)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			if err := Register[string, *benchSession](reg, length, bc.opts...); err != nil {
				b.Fatal(err)
			}
			c := &collector{length: length, shape: Shape{GoType: "x", KeyType: "k", ValueType: "v"}}
			if len(bc.opts) > 0 {
				cfg := newConfig(bc.opts)
				c.entries = cfg.entries
			}
			ch := make(chan prometheus.Metric, 16)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				c.Collect(ch)
				for len(ch) > 0 {
					<-ch
				}
			}
			// CPU time as well as wall time: on a shared machine the wall
			// time mostly measures the other processes.
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU time the process has used, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
