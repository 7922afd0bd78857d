package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestMetrics(t *testing.T) (*prometheus.Registry, *Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, BuildInfo{GoVersion: "go1.26.8", Store: "mutexmap", KeyType: "string", ValueType: "[32]byte"})
	if err != nil {
		t.Fatal(err)
	}
	if err := RegisterStore(reg, func() int { return 42 }, func() int { return 50 },
		StoreInfo{GoType: "map[string][32]byte", KeyType: "string", ValueType: "[32]byte"}); err != nil {
		t.Fatal(err)
	}
	return reg, m
}

func TestLint(t *testing.T) {
	reg, m := newTestMetrics(t)
	m.Peer("127.0.0.1:1")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestSeriesInitialisedAndCounted(t *testing.T) {
	reg, m := newTestMetrics(t)
	// 6 ops: put/get/delete on two protocols, 3 grpc-only → 9 pairs × 3 results.
	if n, err := testutil.GatherAndCount(reg, "mapquake_ops_total"); err != nil || n != 27 {
		t.Fatalf("mapquake_ops_total series = %d, %v; want 27", n, err)
	}
	m.Observe(OpGet, HTTP, Miss, 3*time.Microsecond)
	m.Observe(OpBatchPut, GRPC, OK, time.Millisecond)
	m.AddWrites(512)
	m.AddWrites(0)
	want := `
# HELP mapquake_build_info Always 1; labels describe the binary and the store it serves.
# TYPE mapquake_build_info gauge
mapquake_build_info{go_version="go1.26.8",key_type="string",store="mutexmap",value_type="[32]byte"} 1
# HELP mapquake_store_entries Live entries in the store.
# TYPE mapquake_store_entries gauge
mapquake_store_entries 42
# HELP mapquake_store_high_water_entries Most entries the store has held since start (maps do not shrink).
# TYPE mapquake_store_high_water_entries gauge
mapquake_store_high_water_entries 50
# HELP mapquake_writes_total Map writes applied (puts and deletes, each batch entry and each replicated op counted).
# TYPE mapquake_writes_total counter
mapquake_writes_total 512
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"mapquake_build_info", "mapquake_store_entries", "mapquake_store_high_water_entries", "mapquake_writes_total"); err != nil {
		t.Error(err)
	}
	mf, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range mf {
		found[f.GetName()] = true
		if f.GetName() == "mapquake_ops_total" {
			for _, s := range f.GetMetric() {
				l := map[string]string{}
				for _, lp := range s.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				v := s.GetCounter().GetValue()
				hit := (l["op"] == "get" && l["protocol"] == "http" && l["result"] == "miss") ||
					(l["op"] == "batch_put" && l["protocol"] == "grpc" && l["result"] == "ok")
				if hit != (v == 1) {
					t.Errorf("ops_total%v = %v", l, v)
				}
			}
		}
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_goroutines", "process_resident_memory_bytes",
		"mapquake_request_duration_seconds", "mapquake_store_info"} {
		if !found[name] {
			t.Errorf("%s not exported", name)
		}
	}
}

func TestPeer(t *testing.T) {
	reg, m := newTestMetrics(t)
	p := m.Peer("127.0.0.1:7001")
	p.Backlog.Add(3)
	p.Dropped.Inc()
	if got := testutil.ToFloat64(p.Backlog); got != 3 {
		t.Errorf("backlog = %v", got)
	}
	for _, name := range []string{"mapquake_replication_backlog", "mapquake_replication_backlog_bytes",
		"mapquake_replication_dropped_total", "mapquake_replication_sent_total", "mapquake_replication_errors_total"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v", name, n, err)
		}
	}
}
