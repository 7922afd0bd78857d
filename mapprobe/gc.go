package mapprobe

import (
	"encoding/json"
	"net/http"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GCHandler answers POST requests with an exact sample of the process heap
// next to the size of every map registered with mapprobe: the same JSON
// mapquake's own maptarget answers on POST /admin/gc, which is what
// mapquake's model checks compare against the reference model.
//
// It is opt-in: a service mounts it where only mapquake reaches it (an admin
// listener, or a debug path on a listener the load cannot reach), because
// every request stops the world for two full garbage collections.
//
//	gc := mapprobe.NewGCHandler(reg)
//	mux.Handle("/debug/mapprobe/gc", gc)
//	mux.Handle("/metrics", gc.Quiet(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
//
// # Why Quiet
//
// The sample is exact only if nothing but the service's own data is live
// while it is taken. A /metrics scrape that runs at the same time holds its
// encoding buffers (hundreds of KiB with gzip) and the gathered metric
// families, and they would be counted as live heap. Quiet wraps a handler
// (the service's /metrics, or anything else mapquake calls during a
// measurement) so that it never runs while a sample is being taken: a
// sample waits for the wrapped requests in flight to finish, and wrapped
// requests that arrive during a sample wait for it to finish. Wrapping costs
// an uncontended read lock per request.
type GCHandler struct {
	g prometheus.Gatherer
	// measuring is held for writing while the heap is collected and read,
	// and for reading by every request that Quiet wraps.
	measuring sync.RWMutex
}

// NewGCHandler returns the handler; g is the gatherer the service's maps
// are registered with (usually the *prometheus.Registry it serves on
// /metrics). Only the mapquake_store_* series are read from it; anything
// else it gathers is ignored. With a nil g the answer has the heap figures
// and an empty list of maps.
func NewGCHandler(g prometheus.Gatherer) *GCHandler {
	return &GCHandler{g: g}
}

// Sample is the JSON a GCHandler answers. The heap fields have the names
// and meaning of maptarget's /admin/gc answer.
type Sample struct {
	// GC is always true: runtime.GC() ran (twice) before the heap was read.
	GC bool `json:"gc"`
	// HeapSource is always "gc": the heap figures are exact, read right
	// after forced collections (a scrape's mapquake_heap_live_bytes is what
	// the last collection marked, whenever that ran).
	HeapSource string `json:"heap_source"`
	// LiveBytes is runtime.MemStats.HeapAlloc right after the collections:
	// the bytes of live heap objects.
	LiveBytes uint64 `json:"live_bytes"`
	// GCHeapLiveBytes is runtime/metrics /gc/heap/live:bytes (what
	// client_golang's go_gc_heap_live_bytes exports): bytes marked live by
	// the last collection.
	GCHeapLiveBytes uint64 `json:"gc_heap_live_bytes"`
	HeapObjects     uint64 `json:"heap_objects"`
	// TotalAllocBytes is runtime.MemStats.TotalAlloc (cumulative).
	TotalAllocBytes uint64 `json:"total_alloc_bytes"`
	NumGC           uint32 `json:"num_gc"`
	Goroutines      int    `json:"goroutines"`
	GoVersion       string `json:"go_version"`
	// Maps is every registered map, sorted by its "map" label.
	Maps []MapSample `json:"maps"`
	// With exactly one registered map, its figures appear at the top level
	// too (entries, high_water, go_type, key_type, value_type), as in
	// maptarget's answer; with none or several they are absent.
	*MapStats
	// GatherError is set when the gatherer reported an error; Maps then
	// holds what it did gather.
	GatherError string `json:"gather_error,omitempty"`
}

// MapSample is one registered map in a Sample.
type MapSample struct {
	// Map is the value of the series' "map" label (see the package example
	// for registering several maps), or "" for an unlabelled registration.
	Map string `json:"map"`
	MapStats
}

// MapStats is a map's figures as its mapprobe series report them.
type MapStats struct {
	Entries int64 `json:"entries"`
	// HighWater is mapquake_store_high_water_entries, or Entries when the
	// map was registered without WithHighWater.
	HighWater int64  `json:"high_water"`
	GoType    string `json:"go_type"`
	KeyType   string `json:"key_type"`
	ValueType string `json:"value_type"`
	// Owned is what the map's sampled entries own beyond what go_type
	// prices; only for a map registered WithEntries.
	Owned *Owned `json:"owned,omitempty"`
}

// Owned is a map's mapquake_store_entry_owned_* series: the heap bytes an
// entry's key and value own beyond the container's own memory, as means
// over the last sample of entries (see WithEntries).
type Owned struct {
	KeyBytesPerEntry   float64 `json:"key_bytes_per_entry"`
	ValueBytesPerEntry float64 `json:"value_bytes_per_entry"`
	// Sampled is how many entries the means are over; 0 for an empty map
	// (the means are then 0).
	Sampled int64 `json:"sampled"`
	// Unmeasured counts the references the sample did not follow, by
	// reason ("map", "chan", "func", "unsafe_pointer", "depth"); absent
	// when the walk followed everything.
	Unmeasured map[string]int64 `json:"unmeasured,omitempty"`
}

// ServeHTTP takes a sample on POST and answers it as JSON. Any other
// method gets 405 with a JSON error.
func (h *GCHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed,
			map[string]string{"error": "method " + r.Method + " not allowed; allowed: POST"})
		return
	}
	writeJSON(w, http.StatusOK, h.Measure())
}

// Quiet wraps next so that it never runs while a sample is being taken;
// see the type's documentation for why /metrics needs it.
func (h *GCHandler) Quiet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.measuring.RLock()
		defer h.measuring.RUnlock()
		next.ServeHTTP(w, r)
	})
}

// Measure takes a sample: what ServeHTTP answers.
//
// The collector runs twice because objects parked in a sync.Pool (net/http's
// and many libraries' buffers) survive the first cycle in the pool's victim
// cache and are freed only by the second. The heap is read before the
// gatherer runs, so the metric families it builds are not in the sample.
func (h *GCHandler) Measure() Sample {
	s := h.readHeap()
	s.Maps, s.GatherError = h.maps()
	if len(s.Maps) == 1 {
		only := s.Maps[0].MapStats
		s.MapStats = &only
	}
	return s
}

func (h *GCHandler) readHeap() Sample {
	h.measuring.Lock()
	defer h.measuring.Unlock()
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	s := Sample{
		GC:              true,
		HeapSource:      "gc",
		LiveBytes:       ms.HeapAlloc,
		HeapObjects:     ms.HeapObjects,
		TotalAllocBytes: ms.TotalAlloc,
		NumGC:           ms.NumGC,
		Goroutines:      runtime.NumGoroutine(),
		GoVersion:       runtime.Version(),
	}
	if live[0].Value.Kind() == metrics.KindUint64 {
		s.GCHeapLiveBytes = live[0].Value.Uint64()
	}
	return s
}

// The series a registration exports, by name (see collector.go).
const (
	entriesName         = "mapquake_store_entries"
	highWaterName       = "mapquake_store_high_water_entries"
	infoName            = "mapquake_store_info"
	heapLiveName        = "mapquake_heap_live_bytes"
	heapGoalName        = "mapquake_heap_goal_bytes"
	ownedBytesName      = "mapquake_store_entry_owned_bytes"
	ownedSampledName    = "mapquake_store_entry_owned_sampled_entries"
	ownedUnmeasuredName = "mapquake_store_entry_owned_unmeasured_refs"
)

// maps reads the registered maps from the gatherer. The series of one
// registration share their labels (the registerer's wrapping labels, such as
// map="sessions"); mapquake_store_info adds the type labels, the owned
// series a part or reason label. A map is a mapquake_store_entries series;
// the others are joined to it by those shared labels.
func (h *GCHandler) maps() ([]MapSample, string) {
	if h.g == nil {
		return []MapSample{}, ""
	}
	families, err := h.g.Gather()
	var gatherErr string
	if err != nil {
		gatherErr = err.Error()
	}
	type found struct {
		key            string // the shared labels
		name           string // the "map" label
		entries, high  *float64
		goType, kt, vt string
		owned          *Owned // set by the sampled-entries series
		ownedKey       float64
		ownedValue     float64
		unmeasured     map[string]int64
	}
	byKey := map[string]*found{}
	for _, mf := range families {
		name := mf.GetName()
		switch name {
		case entriesName, highWaterName, infoName, ownedBytesName, ownedSampledName, ownedUnmeasuredName:
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetGauge() == nil {
				continue
			}
			v := m.GetGauge().GetValue()
			var shared []string
			var mapName string
			types := map[string]string{}
			var ownedPart, reason string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "go_type", "key_type", "value_type":
					if name == infoName {
						types[l.GetName()] = l.GetValue()
						continue
					}
				case "part":
					if name == ownedBytesName {
						ownedPart = l.GetValue()
						continue
					}
				case "reason":
					if name == ownedUnmeasuredName {
						reason = l.GetValue()
						continue
					}
				case "map":
					mapName = l.GetValue()
				}
				shared = append(shared, l.GetName()+"\x00"+l.GetValue())
			}
			sort.Strings(shared) // a registry sorts label pairs, another gatherer may not
			key := strings.Join(shared, "\x00")
			f := byKey[key]
			if f == nil {
				f = &found{key: key, name: mapName}
				byKey[f.key] = f
			}
			switch name {
			case entriesName:
				f.entries = &v
			case highWaterName:
				f.high = &v
			case infoName:
				f.goType, f.kt, f.vt = types["go_type"], types["key_type"], types["value_type"]
			case ownedBytesName:
				switch ownedPart {
				case "key":
					f.ownedKey = v
				case "value":
					f.ownedValue = v
				}
			case ownedSampledName:
				f.owned = &Owned{Sampled: int64(v)}
			case ownedUnmeasuredName:
				if f.unmeasured == nil {
					f.unmeasured = map[string]int64{}
				}
				f.unmeasured[reason] = int64(v)
			}
		}
	}
	var maps []*found
	for _, f := range byKey {
		if f.entries != nil { // a high-water or info series alone is not a map
			maps = append(maps, f)
		}
	}
	// By map label, then by any other wrapping labels, so the order is stable.
	sort.Slice(maps, func(i, j int) bool {
		if maps[i].name != maps[j].name {
			return maps[i].name < maps[j].name
		}
		return maps[i].key < maps[j].key
	})
	out := make([]MapSample, 0, len(maps))
	for _, f := range maps {
		s := MapSample{Map: f.name, MapStats: MapStats{
			Entries:   int64(*f.entries),
			HighWater: int64(*f.entries),
			GoType:    f.goType,
			KeyType:   f.kt,
			ValueType: f.vt,
		}}
		if f.high != nil {
			s.HighWater = int64(*f.high)
		}
		if f.owned != nil {
			f.owned.KeyBytesPerEntry, f.owned.ValueBytesPerEntry = f.ownedKey, f.ownedValue
			f.owned.Unmeasured = f.unmeasured
			s.Owned = f.owned
		}
		out = append(out, s)
	}
	return out, gatherErr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
