package mapprobe_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mapquake/mapquake/mapprobe"
)

// post sends one request to h and decodes the JSON answer.
func post(t *testing.T, h http.Handler, method string) (int, http.Header, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "/debug/mapprobe/gc", nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: answer is not a JSON object: %v\n%s", method, err, rec.Body.String())
	}
	return rec.Code, rec.Header(), body
}

// otherSeries registers series that are not mapprobe's but look a little
// like them: a "map" label, a prefix of the name, an info-style label.
func otherSeries(t *testing.T, reg prometheus.Registerer) {
	t.Helper()
	hits := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cache_hits", Help: "h"}, []string{"map"})
	hits.WithLabelValues("sessions").Set(99)
	hits.WithLabelValues("carts").Set(98)
	total := prometheus.NewCounter(prometheus.CounterOpts{Name: "mapquake_store_entries_total", Help: "h"})
	total.Add(1234)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "app_info", Help: "h"}, []string{"go_type"})
	info.WithLabelValues("map[int]int").Set(1)
	for _, c := range []prometheus.Collector{hits, total, info} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGCHandlerSingleMap(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	otherSeries(t, reg)
	var mu sync.Mutex
	m := map[string]int64{"a": 1, "b": 2, "c": 3}
	length := func() int { mu.Lock(); defer mu.Unlock(); return len(m) }
	if err := mapprobe.Register[string, int64](reg, length, mapprobe.WithHighWater(func() int { return 5 })); err != nil {
		t.Fatal(err)
	}
	code, hdr, body := post(t, mapprobe.NewGCHandler(reg), http.MethodPost)
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("POST: %d %q, want 200 application/json", code, hdr.Get("Content-Type"))
	}
	for _, field := range []string{"gc", "heap_source", "live_bytes", "gc_heap_live_bytes", "heap_objects", "total_alloc_bytes",
		"num_gc", "goroutines", "go_version", "maps", "entries", "high_water", "go_type", "key_type", "value_type"} {
		if _, ok := body[field]; !ok {
			t.Errorf("answer has no %q: %v", field, body)
		}
	}
	if _, ok := body["gather_error"]; ok {
		t.Errorf("gather_error present without an error: %v", body)
	}
	if body["gc"] != true || body["go_version"] != runtime.Version() || body["heap_source"] != "gc" {
		t.Errorf("gc = %v, go_version = %v, heap_source = %v; want true, %s, gc",
			body["gc"], body["go_version"], body["heap_source"], runtime.Version())
	}
	for _, field := range []string{"live_bytes", "gc_heap_live_bytes", "heap_objects", "total_alloc_bytes", "goroutines"} {
		if v, _ := body[field].(float64); v <= 0 {
			t.Errorf("%s = %v, want > 0", field, body[field])
		}
	}
	if v, _ := body["num_gc"].(float64); v < 2 {
		t.Errorf("num_gc = %v, want at least the handler's own two collections", body["num_gc"])
	}
	wantMap := map[string]any{"map": "", "entries": 3.0, "high_water": 5.0,
		"go_type": "map[string]int64", "key_type": "string", "value_type": "int64"}
	maps, _ := body["maps"].([]any)
	if len(maps) != 1 {
		t.Fatalf("maps = %v, want one", body["maps"])
	}
	if got := maps[0].(map[string]any); !equalJSON(got, wantMap) {
		t.Errorf("maps[0] = %v, want %v", got, wantMap)
	}
	for field, want := range wantMap {
		if field != "map" && body[field] != want {
			t.Errorf("top-level %s = %v, want %v (a single map is repeated at the top level)", field, body[field], want)
		}
	}
	if _, ok := body["map"]; ok {
		t.Errorf("the top level has a \"map\" field: %v", body)
	}
	if _, ok := body["owned"]; ok {
		t.Errorf("owned without WithEntries: %v", body)
	}
}

// sessionValue is 40 bytes with a pointer (a 48-byte object) owning its
// User string.
type sessionValue struct {
	User    string
	Expires int64
	Hits    [2]int64
}

func TestGCHandlerOwned(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	otherSeries(t, reg)
	var mu sync.Mutex
	sessions := map[string]*sessionValue{}
	for i := 0; i < 4; i++ {
		id := fmt.Sprintf("session-%08d", i)                             // 16 bytes: not tiny, 16
		sessions[id] = &sessionValue{User: fmt.Sprintf("user-%019d", i)} // 24 bytes: 24
	}
	entries := func(yield func(string, *sessionValue) bool) {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range sessions {
			if !yield(k, v) {
				return
			}
		}
	}
	length := func() int { mu.Lock(); defer mu.Unlock(); return len(sessions) }
	if err := mapprobe.Register[string, *sessionValue](prometheus.WrapRegistererWith(prometheus.Labels{"map": "sessions"}, reg),
		length, mapprobe.WithEntries(entries), mapprobe.WithHighWater(func() int { return 9 })); err != nil {
		t.Fatal(err)
	}
	withMap := func(yield func(int, map[int]int) bool) { yield(1, map[int]int{1: 1}) }
	if err := mapprobe.Register[int, map[int]int](prometheus.WrapRegistererWith(prometheus.Labels{"map": "nested"}, reg),
		func() int { return 1 }, mapprobe.WithEntries(withMap)); err != nil {
		t.Fatal(err)
	}
	if err := mapprobe.Register[uint64, [4]int64](prometheus.WrapRegistererWith(prometheus.Labels{"map": "plain"}, reg),
		func() int { return 3 }); err != nil {
		t.Fatal(err)
	}
	_, _, body := post(t, mapprobe.NewGCHandler(reg), http.MethodPost)
	maps, _ := body["maps"].([]any)
	if len(maps) != 3 {
		t.Fatalf("maps = %v, want three", body["maps"])
	}
	want := map[string]any{ // sorted by map label
		"nested": map[string]any{"key_bytes_per_entry": 0.0, "value_bytes_per_entry": 0.0, "sampled": 1.0,
			"unmeasured": map[string]any{"map": 1.0}},
		"plain":    nil,
		"sessions": map[string]any{"key_bytes_per_entry": 16.0, "value_bytes_per_entry": 48.0 + 24.0, "sampled": 4.0},
	}
	for i, name := range []string{"nested", "plain", "sessions"} {
		m := maps[i].(map[string]any)
		if m["map"] != name {
			t.Fatalf("maps[%d] is %v, want %s", i, m["map"], name)
		}
		got, ok := m["owned"]
		if want[name] == nil {
			if ok {
				t.Errorf("%s: owned %v without WithEntries", name, got)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want[name]) {
			t.Errorf("%s: owned = %v, want %v", name, got, want[name])
		}
	}
	if maps[2].(map[string]any)["entries"] != 4.0 || maps[2].(map[string]any)["high_water"] != 9.0 {
		t.Errorf("sessions: %v, want entries 4 and high_water 9 next to owned", maps[2])
	}

	// A single map's owned figures are repeated at the top level.
	one := prometheus.NewPedanticRegistry()
	if err := mapprobe.Register[string, *sessionValue](one, length, mapprobe.WithEntries(entries)); err != nil {
		t.Fatal(err)
	}
	_, _, body = post(t, mapprobe.NewGCHandler(one), http.MethodPost)
	if got := fmt.Sprint(body["owned"]); got != fmt.Sprint(want["sessions"]) {
		t.Errorf("top-level owned = %s, want %v", got, want["sessions"])
	}
}

func TestGCHandlerTwoLabelledMaps(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	otherSeries(t, reg)
	sessions := mapprobe.Register[string, [32]byte]
	if err := sessions(prometheus.WrapRegistererWith(prometheus.Labels{"map": "sessions"}, reg),
		func() int { return 7 }, mapprobe.WithHighWater(func() int { return 70 })); err != nil {
		t.Fatal(err)
	}
	if err := mapprobe.Register[uint64, any](prometheus.WrapRegistererWith(prometheus.Labels{"map": "carts"}, reg),
		func() int { return 2 }, mapprobe.WithDynamicValueType[int64]()); err != nil {
		t.Fatal(err)
	}
	code, _, body := post(t, mapprobe.NewGCHandler(reg), http.MethodPost)
	if code != http.StatusOK {
		t.Fatalf("POST: %d, want 200", code)
	}
	want := []map[string]any{
		{"map": "carts", "entries": 2.0, "high_water": 2.0, // no WithHighWater: high_water is entries
			"go_type": "map[uint64]any(int64)", "key_type": "uint64", "value_type": "any(int64)"},
		{"map": "sessions", "entries": 7.0, "high_water": 70.0,
			"go_type": "map[string][32]byte", "key_type": "string", "value_type": "[32]byte"},
	}
	maps, _ := body["maps"].([]any)
	if len(maps) != len(want) {
		t.Fatalf("maps = %v, want %d", body["maps"], len(want))
	}
	for i := range want {
		if got := maps[i].(map[string]any); !equalJSON(got, want[i]) {
			t.Errorf("maps[%d] = %v, want %v", i, got, want[i])
		}
	}
	for _, field := range []string{"entries", "high_water", "go_type", "key_type", "value_type"} {
		if _, ok := body[field]; ok {
			t.Errorf("top-level %q with two maps: %v", field, body)
		}
	}
}

func TestGCHandlerNoMaps(t *testing.T) {
	for name, g := range map[string]prometheus.Gatherer{"empty registry": prometheus.NewRegistry(), "nil gatherer": nil} {
		_, _, body := post(t, mapprobe.NewGCHandler(g), http.MethodPost)
		if maps, ok := body["maps"].([]any); !ok || len(maps) != 0 {
			t.Errorf("%s: maps = %#v, want []", name, body["maps"])
		}
		if _, ok := body["entries"]; ok {
			t.Errorf("%s: top-level entries without a map: %v", name, body)
		}
	}
}

// failing is a collector whose every scrape fails.
type failing struct{ desc *prometheus.Desc }

func (f failing) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }
func (f failing) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(f.desc, errors.New("backend down"))
}

func TestGCHandlerGatherErrorKeepsMaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(failing{prometheus.NewDesc("flaky", "h", nil, nil)})
	if err := mapprobe.Register[int, int](reg, func() int { return 4 }); err != nil {
		t.Fatal(err)
	}
	code, _, body := post(t, mapprobe.NewGCHandler(reg), http.MethodPost)
	if code != http.StatusOK || !strings.Contains(body["gather_error"].(string), "backend down") {
		t.Fatalf("POST: %d, gather_error %v; want 200 and the collector's error", code, body["gather_error"])
	}
	if body["entries"] != 4.0 {
		t.Errorf("entries = %v, want 4 (the map is still reported)", body["entries"])
	}
}

func TestGCHandlerMethodNotAllowed(t *testing.T) {
	h := mapprobe.NewGCHandler(prometheus.NewRegistry())
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodHead} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, "/gc", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "POST" ||
			rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d Allow=%q Content-Type=%q, want 405 POST application/json",
				method, rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Type"))
		}
		if method == http.MethodHead {
			continue
		}
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body["error"], "not allowed") {
			t.Errorf("%s: body %q, want a JSON error", method, rec.Body.String())
		}
	}
}

// sink keeps the large allocation reachable until the test drops it.
var sink []byte

func TestGCHandlerLiveBytesFollowsReleasedMemory(t *testing.T) {
	const size = 64 << 20
	h := mapprobe.NewGCHandler(nil)
	sink = make([]byte, size)
	for i := range sink {
		sink[i] = byte(i) // touch every page; HeapAlloc counts the object either way
	}
	held := h.Measure()
	sink = nil
	released := h.Measure()
	if held.LiveBytes < size {
		t.Fatalf("live_bytes = %d while holding %d bytes", held.LiveBytes, size)
	}
	if drop := int64(held.LiveBytes) - int64(released.LiveBytes); drop < size*15/16 {
		t.Errorf("live_bytes %d -> %d after releasing %d bytes: dropped only %d", held.LiveBytes, released.LiveBytes, size, drop)
	}
	if drop := int64(held.GCHeapLiveBytes) - int64(released.GCHeapLiveBytes); drop < size*15/16 {
		t.Errorf("gc_heap_live_bytes %d -> %d after releasing %d bytes: dropped only %d",
			held.GCHeapLiveBytes, released.GCHeapLiveBytes, size, drop)
	}
}

// TestQuietKeepsRequestsOutOfASample checks both directions: a sample waits
// for a quiet request in flight, and a quiet request waits for a sample.
func TestQuietKeepsRequestsOutOfASample(t *testing.T) {
	h := mapprobe.NewGCHandler(prometheus.NewRegistry())
	entered, release := make(chan struct{}), make(chan struct{})
	scrape := h.Quiet(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "# metrics\n")
	}))
	srv := httptest.NewServer(scrape)
	defer srv.Close()

	scraped := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		scraped <- err
	}()
	<-entered // the scrape is in flight
	measured := make(chan mapprobe.Sample, 1)
	go func() { measured <- h.Measure() }()
	select {
	case <-measured:
		t.Fatal("a sample was taken while a quiet request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-scraped; err != nil {
		t.Fatal(err)
	}
	select {
	case <-measured:
	case <-time.After(10 * time.Second):
		t.Fatal("the sample did not finish after the quiet request did")
	}
}

// TestGCHandlerConcurrentUse runs samples, quiet scrapes and map writes at
// once, for the race detector.
func TestGCHandlerConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	m := map[int]int{}
	if err := mapprobe.Register[int, int](reg, func() int { mu.Lock(); defer mu.Unlock(); return len(m) }); err != nil {
		t.Fatal(err)
	}
	h := mapprobe.NewGCHandler(reg)
	scrape := h.Quiet(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if _, err := reg.Gather(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				switch g {
				case 0:
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/gc", nil))
					if rec.Code != http.StatusOK {
						t.Errorf("POST: %d", rec.Code)
					}
				case 1:
					rec := httptest.NewRecorder()
					scrape.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				default:
					mu.Lock()
					m[g*100+i] = i
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if s := h.Measure(); s.MapStats == nil || s.Entries != 10 {
		t.Errorf("after the writes: %+v, want one map with 10 entries", s)
	}
}

// equalJSON compares two decoded JSON objects with flat values.
func equalJSON(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
