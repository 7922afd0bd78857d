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
// Each registration exports three unlabelled series:
//
//	mapquake_store_entries                                   live entries (gauge, read from length at scrape time)
//	mapquake_store_high_water_entries                        most entries ever held (gauge, only with WithHighWater)
//	mapquake_store_info{go_type,key_type,value_type} 1       the container's type in the model's syntax
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
// # Exact heap samples
//
// NewGCHandler returns an opt-in http.Handler a service mounts on an admin
// path. On POST it runs the garbage collector twice, reads the heap and
// answers JSON with the same field names as maptarget's POST /admin/gc, plus
// every registered map gathered from the registry ("maps"). Its Quiet method
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
