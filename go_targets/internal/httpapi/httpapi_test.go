package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mapquake/mapquake/go_targets/internal/metrics"
	"github.com/mapquake/mapquake/go_targets/internal/node"
	"github.com/mapquake/mapquake/go_targets/internal/store"
)

func newServer(t *testing.T, storeName, valueType string) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	srv, ready, _ := newServerWith(t, storeName, valueType, node.Limits{}, Options{MaxBodyBytes: 64})
	return srv, ready
}

// newServerWith serves a node with these limits; opts gets the gatherer and
// readiness filled in.
func newServerWith(t *testing.T, storeName, valueType string, limits node.Limits, opts Options) (*httptest.Server, *atomic.Bool, *node.Node) {
	t.Helper()
	st, err := store.New(storeName, store.Options{ValueType: valueType})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	reg := prometheus.NewRegistry()
	info := st.Info()
	m, err := metrics.NewMetrics(reg, metrics.BuildInfo{GoVersion: "go", Store: info.Store, KeyType: info.KeyType, ValueType: info.ValueType})
	if err != nil {
		t.Fatal(err)
	}
	if err := metrics.RegisterStore(reg, st.Len, st.HighWater, metrics.StoreInfo{GoType: info.GoType, KeyType: info.KeyType, ValueType: info.ValueType}); err != nil {
		t.Fatal(err)
	}
	ready := new(atomic.Bool)
	ready.Store(true)
	n := node.New(st, m, nil)
	n.SetLimits(limits)
	n.SetAdminToken(testAdminToken)
	opts.Gatherer, opts.Ready = reg, ready
	srv := httptest.NewServer(Handler(n, opts))
	t.Cleanup(srv.Close)
	return srv, ready, n
}

type reply struct {
	code int
	body string
	ct   string
}

const testAdminToken = "test-admin-token"

// call sends a request with the admin token.
func call(t *testing.T, srv *httptest.Server, method, path, body string) reply {
	t.Helper()
	return callAuth(t, srv, method, path, body, "Bearer "+testAdminToken)
}

func callAuth(t *testing.T, srv *httptest.Server, method, path, body, authorization string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header.Get("Content-Type")}
}

func TestKVRoundTrip(t *testing.T) {
	srv, _ := newServer(t, "mutexmap", "[]byte")
	steps := []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"PUT", "/kv/alpha", "one", 201, ""},
		{"PUT", "/kv/alpha", "two", 204, ""},
		{"GET", "/kv/alpha", "", 200, "two"},
		{"GET", "/kv/beta", "", 404, `{"error":"key \"beta\" not found"}` + "\n"},
		{"DELETE", "/kv/alpha", "", 204, ""},
		{"DELETE", "/kv/alpha", "", 404, `{"error":"key \"alpha\" not found"}` + "\n"},
		{"GET", "/kv/alpha", "", 404, ""},
		{"PUT", "/kv/", "x", 400, `{"error":"bad key: key is empty"}` + "\n"},
		{"PUT", "/kv/" + strings.Repeat("k", node.MaxKeyBytes+1), "x", 400, ""},
		{"PUT", "/kv/big", strings.Repeat("x", 65), 413, `{"error":"body exceeds 64 bytes"}` + "\n"},
		{"POST", "/kv/alpha", "", 405, ""},
		{"GET", "/nope", "", 404, `{"error":"not found"}` + "\n"},
		{"GET", "/healthz", "", 200, "ok\n"},
	}
	for _, s := range steps {
		got := call(t, srv, s.method, s.path, s.body)
		if got.code != s.code || (s.want != "" && got.body != s.want) {
			t.Errorf("%s %.30s: %d %q, want %d %q", s.method, s.path, got.code, got.body, s.code, s.want)
		}
		if got.code >= 400 && got.ct != "application/json" {
			t.Errorf("%s %.30s: error content type %q", s.method, s.path, got.ct)
		}
	}
	got := call(t, srv, "POST", "/kv/alpha", "")
	if !strings.Contains(got.body, "method not allowed") || !strings.Contains(got.body, "PUT") {
		t.Errorf("405 body %q", got.body)
	}
}

func TestBadValueNamesTheType(t *testing.T) {
	srv, _ := newServer(t, "structmap", "int64")
	if got := call(t, srv, "PUT", "/kv/n", "42"); got.code != 201 {
		t.Fatalf("put 42: %+v", got)
	}
	if got := call(t, srv, "GET", "/kv/n", ""); got.body != "42" {
		t.Fatalf("get: %+v", got)
	}
	got := call(t, srv, "PUT", "/kv/n", "forty-two")
	var e map[string]string
	if got.code != 400 || json.Unmarshal([]byte(got.body), &e) != nil || !strings.Contains(e["error"], "int64") {
		t.Fatalf("bad value: %+v", got)
	}
}

func TestAdminGCAndMetrics(t *testing.T) {
	srv, ready := newServer(t, "syncmap", "[32]byte")
	for _, k := range []string{"a", "b", "c"} {
		call(t, srv, "PUT", "/kv/"+k, "v")
	}
	call(t, srv, "DELETE", "/kv/c", "")
	call(t, srv, "GET", "/kv/zz", "")
	got := call(t, srv, "POST", "/admin/gc", "")
	var st map[string]any
	if err := json.Unmarshal([]byte(got.body), &st); err != nil || got.code != 200 {
		t.Fatalf("admin/gc: %d %q %v", got.code, got.body, err)
	}
	for _, f := range []string{"live_bytes", "heap_objects", "goroutines", "entries", "high_water",
		"total_alloc_bytes", "num_gc", "go_version", "store", "go_type", "gc_heap_live_bytes"} {
		if _, ok := st[f]; !ok {
			t.Errorf("admin/gc lacks %s: %s", f, got.body)
		}
	}
	if st["entries"] != 2.0 || st["high_water"] != 3.0 || st["store"] != "syncmap" || st["live_bytes"].(float64) <= 0 ||
		st["num_gc"].(float64) < 1 || !strings.HasPrefix(st["go_type"].(string), "sync.Map[string]") {
		t.Errorf("admin/gc: %s", got.body)
	}
	if got := call(t, srv, "GET", "/admin/gc", ""); got.code != 405 {
		t.Errorf("GET /admin/gc: %d", got.code)
	}

	body := call(t, srv, "GET", "/metrics", "").body
	for _, line := range []string{
		"mapquake_store_entries 2",
		"mapquake_store_high_water_entries 3",
		`mapquake_ops_total{op="put",protocol="http",result="ok"} 3`,
		`mapquake_ops_total{op="get",protocol="http",result="miss"} 1`,
		`mapquake_ops_total{op="batch_put",protocol="grpc",result="ok"} 0`,
		"mapquake_writes_total 4",
		`mapquake_request_duration_seconds_count{op="put",protocol="http"} 3`,
		"go_gc_heap_live_bytes ",
	} {
		if !strings.Contains(body, "\n"+line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}

	ready.Store(false)
	if got := call(t, srv, "GET", "/healthz", ""); got.code != 503 {
		t.Errorf("healthz not ready: %+v", got)
	}
}
