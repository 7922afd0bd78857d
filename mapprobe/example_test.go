package mapprobe_test

import (
	"fmt"
	"log"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mapquake/mapquake/mapprobe"
)

// Session is a value type a service might keep per user.
type Session struct {
	User    string
	Expires int64
}

// A service with two maps registers each through a registerer wrapped with a
// "map" label, so the series of the two maps stay apart.
func Example() {
	reg := prometheus.NewRegistry()

	var mu sync.Mutex
	sessions := map[string]Session{"alice": {}, "bob": {}}
	counters := map[uint64]any{1: int64(10), 2: int64(20), 3: int64(30)}
	locked := func(m func() int) func() int {
		return func() int { mu.Lock(); defer mu.Unlock(); return m() }
	}

	err := mapprobe.Register[string, Session](
		prometheus.WrapRegistererWith(prometheus.Labels{"map": "sessions"}, reg),
		locked(func() int { return len(sessions) }))
	if err != nil {
		panic(err)
	}
	err = mapprobe.Register[uint64, any](
		prometheus.WrapRegistererWith(prometheus.Labels{"map": "counters"}, reg),
		locked(func() int { return len(counters) }),
		mapprobe.WithDynamicValueType[int64]())
	if err != nil {
		panic(err)
	}

	printSeries(reg)
	// Output:
	// mapquake_heap_goal_bytes{map="counters"} (the GC's heap goal)
	// mapquake_heap_goal_bytes{map="sessions"} (the GC's heap goal)
	// mapquake_heap_live_bytes{map="counters"} (the live heap)
	// mapquake_heap_live_bytes{map="sessions"} (the live heap)
	// mapquake_store_entries{map="counters"} 3
	// mapquake_store_entries{map="sessions"} 2
	// mapquake_store_info{go_type="map[string]struct{User string; Expires int64}",key_type="string",map="sessions",value_type="struct{User string; Expires int64}"} 1
	// mapquake_store_info{go_type="map[uint64]any(int64)",key_type="uint64",map="counters",value_type="any(int64)"} 1
}

// A map whose values are pointers, or whose keys or values are strings,
// slices or interfaces, owns heap memory beyond its own slots: the session
// structs and the bytes of the IDs and user names here. WithEntries lets
// mapprobe measure it from a sample of entries, so mapquake attributes it
// to the map instead of calling it a leak.
func ExampleWithEntries() {
	reg := prometheus.NewRegistry()

	var mu sync.Mutex
	sessions := map[string]*Session{}
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("sess-%011d", i) // 16 bytes
		sessions[id] = &Session{User: fmt.Sprintf("user-%03d", i)}
	}

	err := mapprobe.Register[string, *Session](
		prometheus.WrapRegistererWith(prometheus.Labels{"map": "sessions"}, reg),
		func() int { mu.Lock(); defer mu.Unlock(); return len(sessions) },
		// The iterator takes the lock itself and stops when yield says so.
		mapprobe.WithEntries(func(yield func(string, *Session) bool) {
			mu.Lock()
			defer mu.Unlock()
			for id, s := range sessions {
				if !yield(id, s) {
					return
				}
			}
		}))
	if err != nil {
		panic(err)
	}

	// Per entry: the key's 16 bytes; a 24-byte Session and its 8-byte user
	// name (a string under 16 B is charged its tiny allocator's 16-byte block).
	printSeries(reg)
	// Output:
	// mapquake_heap_goal_bytes{map="sessions"} (the GC's heap goal)
	// mapquake_heap_live_bytes{map="sessions"} (the live heap)
	// mapquake_store_entries{map="sessions"} 3
	// mapquake_store_entry_owned_bytes{map="sessions",part="key"} 16
	// mapquake_store_entry_owned_bytes{map="sessions",part="value"} 40
	// mapquake_store_entry_owned_sampled_entries{map="sessions"} 3
	// mapquake_store_info{go_type="map[string]*struct{User string; Expires int64}",key_type="string",map="sessions",value_type="*struct{User string; Expires int64}"} 1
}

// A service opts in to exact heap samples by mounting the GC handler where
// only mapquake reaches it, and wraps its /metrics handler with Quiet so a
// scrape's buffers never land in a sample.
func ExampleNewGCHandler() {
	reg := prometheus.NewRegistry()
	var mu sync.RWMutex
	items := map[uint64][4]int64{}
	err := mapprobe.Register[uint64, [4]int64](
		prometheus.WrapRegistererWith(prometheus.Labels{"map": "items"}, reg),
		func() int { mu.RLock(); defer mu.RUnlock(); return len(items) })
	if err != nil {
		panic(err)
	}

	gc := mapprobe.NewGCHandler(reg)
	mux := http.NewServeMux()
	mux.Handle("/metrics", gc.Quiet(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	admin := http.NewServeMux()
	admin.Handle("/debug/mapprobe/gc", gc) // POST answers the heap and {"maps":[{"map":"items",...}]}
	go func() { log.Fatal(http.ListenAndServe("127.0.0.1:6060", admin)) }()
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

// printSeries prints every gathered series on one line, sorted, with the
// live heap's value (which changes with every allocation) left out.
func printSeries(g prometheus.Gatherer) {
	families, err := g.Gather()
	if err != nil {
		panic(err)
	}
	var lines []string
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			value := fmt.Sprintf("%g", m.GetGauge().GetValue())
			switch mf.GetName() {
			case "mapquake_heap_live_bytes":
				value = "(the live heap)"
			case "mapquake_heap_goal_bytes":
				value = "(the GC's heap goal)"
			}
			lines = append(lines, fmt.Sprintf("%s{%s} %s", mf.GetName(), strings.Join(labels, ","), value))
		}
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
}
