package mapprobe

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// lockedMap is how a service typically guards a map; Len is what it passes
// to Register.
type lockedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (l *lockedMap[K, V]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

const entriesHelp = `# HELP mapquake_store_entries Live entries in the store.
# TYPE mapquake_store_entries gauge
`
const highWaterHelp = `# HELP mapquake_store_high_water_entries Most entries the store has held since start (maps do not shrink).
# TYPE mapquake_store_high_water_entries gauge
`

// storeSeries are the series whose values a test fixes (the live heap's
// changes with every allocation).
var storeSeries = []string{"mapquake_store_entries", "mapquake_store_high_water_entries", "mapquake_store_info"}

const infoHelp = `# HELP mapquake_store_info Always 1; labels give the container's Go type in the reference model's syntax.
# TYPE mapquake_store_info gauge
`

func TestRegisterExportsEntriesAndShape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	sessions := &lockedMap[string, session]{m: map[string]session{"a": {}, "b": {}}}
	if err := Register[string, [32]byte](reg, sessions.Len); err != nil {
		t.Fatal(err)
	}
	want := entriesHelp + "mapquake_store_entries 2\n" + infoHelp +
		`mapquake_store_info{go_type="map[string][32]byte",key_type="string",value_type="[32]byte"} 1` + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), storeSeries...); err != nil {
		t.Fatal(err)
	}

	// The gauge reads the map at scrape time.
	sessions.mu.Lock()
	sessions.m["c"] = session{}
	sessions.mu.Unlock()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(entriesHelp+"mapquake_store_entries 3\n"), "mapquake_store_entries"); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		register func(prometheus.Registerer, func() int, ...Option) error
		opts     []Option
		info     string
	}{
		{"dynamic value", Register[string, any], []Option{WithDynamicValueType[int64]()},
			`go_type="map[string]any(int64)",key_type="string",value_type="any(int64)"`},
		{"named struct value", Register[int, point], nil,
			`go_type="map[int]struct{X int32; Y int32}",key_type="int",value_type="struct{X int32; Y int32}"`},
		{"go type override", Register[string, []byte], []Option{WithGoType("[16]map[string][]byte")},
			`go_type="[16]map[string][]byte",key_type="string",value_type="[]byte"`},
		{"sync.Map", RegisterSyncMap[string, [32]byte], nil,
			`go_type="sync.Map[string][32]byte",key_type="string",value_type="[32]byte"`},
		{"sync.Map of any holding strings", RegisterSyncMap[uint64, any], []Option{WithDynamicValueType[string]()},
			`go_type="sync.Map[uint64]string",key_type="uint64",value_type="string"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewPedanticRegistry()
			if err := tc.register(reg, func() int { return 7 }, tc.opts...); err != nil {
				t.Fatal(err)
			}
			want := infoHelp + "mapquake_store_info{" + tc.info + "} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mapquake_store_info"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHighWaterOnlyWhenGiven(t *testing.T) {
	var high atomic.Int64
	high.Store(50)
	c := &collector{length: func() int { return 42 }, highWater: func() int { return int(high.Load()) },
		shape: Shape{GoType: "map[string]int64", KeyType: "string", ValueType: "int64"}}
	want := entriesHelp + "mapquake_store_entries 42\n" + highWaterHelp + "mapquake_store_high_water_entries 50\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "mapquake_store_entries", "mapquake_store_high_water_entries"); err != nil {
		t.Fatal(err)
	}
	c.highWater = nil
	if n := testutil.CollectAndCount(c, "mapquake_store_high_water_entries"); n != 0 {
		t.Fatalf("without WithHighWater there are %d high-water series, want none", n)
	}
}

// TestRegisterShape is maptarget's call: one store, unlabelled series.
func TestRegisterShape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	shape := Shape{GoType: "map[string]any(struct{Value [32]byte; Version uint64})", KeyType: "string", ValueType: "[32]byte"}
	if err := RegisterShape(reg, func() int { return 100000 }, shape, WithHighWater(func() int { return 120000 })); err != nil {
		t.Fatal(err)
	}
	want := entriesHelp + "mapquake_store_entries 100000\n" + highWaterHelp + "mapquake_store_high_water_entries 120000\n" + infoHelp +
		`mapquake_store_info{go_type="map[string]any(struct{Value [32]byte; Version uint64})",key_type="string",value_type="[32]byte"} 1` + "\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), storeSeries...); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("GatherAndLint = %v, %v; want no problems", problems, err)
	}
}

func TestRegisterErrors(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	length := func() int { return 0 }
	if err := Register[string, int64](reg, length, WithDynamicValueType[int64]()); err == nil || !strings.Contains(err.Error(), "interface") {
		t.Errorf("WithDynamicValueType on a concrete V: err = %v, want one about interface types", err)
	}
	if err := RegisterSyncMap[string, int64](reg, length, WithDynamicValueType[int64]()); err == nil {
		t.Error("RegisterSyncMap accepted WithDynamicValueType on a concrete V")
	}
	if err := Register[string, int64](nil, length); err == nil {
		t.Error("Register accepted a nil registerer")
	}
	if err := Register[string, int64](reg, nil); err == nil {
		t.Error("Register accepted a nil length")
	}
	if err := RegisterShape(reg, length, Shape{GoType: "map[string]int64"}); err == nil {
		t.Error("RegisterShape accepted a shape without key and value types")
	}
	// Nothing above registered anything, so a real registration works...
	if err := Register[string, int64](reg, length); err != nil {
		t.Fatal(err)
	}
	// ...and a second unlabelled map on the same registerer is refused whole.
	var are prometheus.AlreadyRegisteredError
	if err := Register[string, string](reg, length); !errors.As(err, &are) {
		t.Errorf("second Register on one registerer: err = %v, want AlreadyRegisteredError (wrap it with a map label)", err)
	}
}

// TestSeveralMapsLintClean registers two maps the documented way, with a
// map label each, and lints what a scrape would see.
func TestSeveralMapsLintClean(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for _, name := range []string{"sessions", "carts"} {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"map": name}, reg)
		if err := Register[string, any](wrapped, func() int { return 1 }, WithDynamicValueType[point](), WithHighWater(func() int { return 2 })); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "mapquake_store_entries"); err != nil || n != 2 {
		t.Fatalf("mapquake_store_entries series = %d, %v; want 2", n, err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Fatalf("GatherAndLint = %v, %v; want no problems", problems, err)
	}
}
