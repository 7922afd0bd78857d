// Package mapprobe lets a Go service describe its own maps to mapquake, so
// mapquake's comparator can check the service's heap against the reference
// model even though mapquake never saw its source.
//
// mapprobe is its own Go module, so a service requires it alone (its only
// dependency is github.com/prometheus/client_golang):
//
//	go get github.com/mapquake/mapquake/mapprobe
//
// It needs Go 1.22 or newer and client_golang v1.7.0 or newer.
//
// A service registers each map it wants checked with the Prometheus
// registerer it already serves, in the client_golang style: nothing global,
// the registerer is injected.
//
//	err := mapprobe.Register[string, Session](reg, sessionsLen,
//		mapprobe.WithHighWater(sessionsHighWater))
//
// Each registration exports these unlabelled series:
//
//	mapquake_store_entries                                   live entries (gauge, read from length at scrape time)
//	mapquake_store_high_water_entries                        most entries ever held (gauge, only with WithHighWater)
//	mapquake_store_info{go_type,key_type,value_type} 1       the container's type in the model's syntax
//	mapquake_heap_live_bytes                                 the process's live heap (runtime/metrics /gc/heap/live:bytes)
//	mapquake_heap_goal_bytes                                 the GC's heap goal (runtime/metrics /gc/heap/goal:bytes)
//
// and, only with WithEntries:
//
//	mapquake_store_entry_owned_bytes{part="key"|"value"}     mean heap bytes a sampled entry's key or value owns
//	mapquake_store_entry_owned_sampled_entries               entries the means are over (0: the map is empty)
//	mapquake_store_entry_owned_unmeasured_refs{reason}       references the walk did not follow (only when some)
//
// mapquake_heap_live_bytes is the heap the last garbage collection marked
// live: what client_golang's go_gc_heap_live_bytes is, which the default
// collectors.NewGoCollector() does not export. Every registration exports
// it so that mapquake never has to fall back to heap_alloc (which counts
// garbage); a service with several maps serves one copy per map, all
// equal. Reading it costs one runtime/metrics read per map and scrape.
// mapquake_heap_goal_bytes comes with it (/gc/heap/goal:bytes): what is
// allocated while the collector marks is counted live, up to the goal, so
// goal minus live bounds how far the live figure can be off.
//
// The model needs the high-water mark because Go maps never shrink: a map
// that held a million entries keeps a million entries' worth of tables after
// deletes. Without WithHighWater the comparator can only assume the map never
// had more entries than it has now.
//
// The series carry no labels so that a service with one map (such as
// mapquake's own maptarget) shows exactly "mapquake_store_entries 100000".
// A service with several maps registers each through
// prometheus.WrapRegistererWith(prometheus.Labels{"map": name}, reg); see the
// example.
//
// # What entries own
//
// The model knows a map's own memory from its type: the slots, tables and
// overflow. Whatever an entry points to is outside the map: the bytes of a
// string key, the struct a *Session value points to, a []byte's backing
// array, an interface's box. For a map[string]*Session that is most of its
// memory. WithEntries lets mapprobe measure it: at each scrape it walks the
// first 256 entries the caller's iterator yields (a random-ish sample: a
// range over a Go map starts at a random place) by reflection, rounds each
// object it reaches to the Go allocator's size class, counts an object
// several entries share once, and exports the mean per entry. Use it for
// any map whose key or value is, or contains, a pointer, string, slice or
// interface; maps of fixed-size values (map[uint64][32]byte) own nothing
// beyond their slots and do not need it.
//
// The cost is paid at scrape time, with the map's lock held: about 1,000
// objects read for 256 entries of a map[string]*T whose T holds two
// strings, 50 to 75 us of CPU (mostly cache misses) on a loaded 2-core machine
// (BenchmarkCollectWithEntries); the walk visits at most 65,536 objects
// per scrape. What it cannot know: strings in read-only data (literals)
// and pointers into the middle of a bigger object are charged as if
// allocated on their own, a sub-slice or substring pinning a larger array
// is charged only its own extent, and maps, channels and closures an entry
// holds are not measured (mapquake_store_entry_owned_unmeasured_refs counts
// them).
//
// # Exact heap samples
//
// NewGCHandler returns an opt-in http.Handler a service mounts on an admin
// path. On POST it runs the garbage collector twice, reads the heap and
// answers JSON with the same field names as maptarget's POST /admin/gc, plus
// every registered map gathered from the registry ("maps", each with what
// its entries own when registered WithEntries) and "heap_source": "gc". Its Quiet method
// wraps the service's /metrics handler so that a concurrent scrape's buffers
// never land in a sample.
//
// # Type syntax
//
// go_type is Go type syntax with two additions the model understands:
// any(T) is an interface slot holding a value of dynamic type T, and
// sync.Map[K]V is a sync.Map storing K keys and V values. Named types are
// expanded to their structure (time.Duration is int64, a struct type is
// struct{Field T; ...}) because memory depends on layout, not on names; see
// TypeString for the exact rules.
package mapprobe
