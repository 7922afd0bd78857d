package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The items map's types as mapprobe renders them for the model.
const (
	valueType = "*struct{Qty int64; PriceCents int64; Updated int64; Name string}"
	goType    = "map[string]" + valueType
)

func testConfig() config {
	return config{httpAddr: "127.0.0.1:0", capacity: 1000, queue: 100,
		peerTimeout: 500 * time.Millisecond, shutdownWait: 2 * time.Second}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestService(t *testing.T, cfg config) (*service, http.Handler) {
	t.Helper()
	s, err := newService(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.routes()
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// do sends one request to the service's handler.
func do(t *testing.T, s *service, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	h, err := s.routes()
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

func TestAPIStatusCodes(t *testing.T) {
	s, _ := newTestService(t, testConfig())
	const good = `{"name":"hex key 5mm","qty":12,"price_cents":499}`
	for _, tc := range []struct {
		method, path, body string
		code               int
		errorHas           string // in the JSON error; "" for success
	}{
		{"GET", "/healthz", "", 200, ""},
		{"GET", "/items/sku-000001", "", 404, "not found"},
		{"PUT", "/items/sku-000001", good, 204, ""},
		{"PUT", "/items/sku-000001", `{"name":"hex key 5mm","qty":11,"price_cents":499}`, 204, ""},
		{"GET", "/items/sku-000001", "", 200, ""},
		{"PUT", "/items/" + strings.Repeat("Z", 32), good, 204, ""},
		{"PUT", "/items/HEX_5-mm", good, 204, ""},
		{"PUT", "/items/" + strings.Repeat("Z", 33), good, 400, "1 to 32 ASCII letters"},
		{"PUT", "/items/sku%2F1", good, 400, "1 to 32 ASCII letters"},
		{"PUT", "/items/sku%201", good, 400, "1 to 32 ASCII letters"},
		{"PUT", "/items/sku.1", good, 400, "1 to 32 ASCII letters"},
		{"GET", "/items/sk%C3%BC", "", 400, "1 to 32 ASCII letters"},
		{"PUT", "/items/2", `not json`, 400, "JSON object"},
		{"PUT", "/items/2", `[1]`, 400, "JSON object"},
		{"PUT", "/items/2", `{"name":"a","qty":1}`, 400, `"price_cents"`},
		{"PUT", "/items/2", `{"name":"a","qty":1,"price_cents":1,"color":"red"}`, 400, "unknown field"},
		{"PUT", "/items/2", `{"name":"a","qty":"1","price_cents":1}`, 400, "qty"},
		{"PUT", "/items/2", `{"name":"` + strings.Repeat("n", 25) + `","qty":1,"price_cents":1}`, 400, "at most 24"},
		{"PUT", "/items/2", `{"name":"","qty":1,"price_cents":1}`, 400, "empty"},
		{"PUT", "/items/2", `{"name":"a","qty":-1,"price_cents":1}`, 400, "qty"},
		{"PUT", "/items/2", `{"name":"a","qty":1,"price_cents":1}{}`, 400, "body"},
		{"PUT", "/items/2", `{"name":"` + strings.Repeat("n", 2000) + `"}`, 413, "exceeds"},
		{"POST", "/items/sku-000001", good, 405, "allowed"},
		{"GET", "/replicate/items/sku-000001", "", 405, "POST"},
		{"POST", "/replicate/items/sku-000003", good, 204, ""},
		{"POST", "/replicate/items/sku-000003", `{}`, 400, `"name"`},
		{"DELETE", "/items/sku-000001", "", 204, ""},
		{"DELETE", "/items/sku-000001", "", 404, "not found"},
		{"GET", "/items/sku-000001", "", 404, "not found"},
		{"GET", "/nowhere", "", 404, "not found"},
		{"POST", "/debug/mapprobe/gc", "", 404, "not found"}, // not mounted without --admin-gc
	} {
		rec := do(t, s, tc.method, tc.path, tc.body)
		if rec.Code != tc.code {
			t.Errorf("%s %s %.40s: %d %s, want %d", tc.method, tc.path, tc.body, rec.Code, rec.Body.String(), tc.code)
			continue
		}
		if tc.errorHas == "" {
			continue
		}
		var e map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !strings.Contains(e["error"], tc.errorHas) ||
			rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: body %q (%s), want a JSON error mentioning %q", tc.method, tc.path, rec.Body.String(),
				rec.Header().Get("Content-Type"), tc.errorHas)
		}
	}
	var got itemResponse
	s.store.Put("sku-000001", item("hex key 5mm", 11))
	if err := json.Unmarshal(do(t, s, "GET", "/items/sku-000001", "").Body.Bytes(), &got); err != nil ||
		got.SKU != "sku-000001" || got.Name != "hex key 5mm" || got.Qty != 11 || got.PriceCents != 1100 || got.UpdatedUnixNano == 0 {
		t.Errorf("GET /items/sku-000001 = %+v, %v", got, err)
	}
	if body := do(t, s, "GET", "/healthz", "").Body.String(); body != "ok\n" {
		t.Errorf("/healthz body %q, want ok", body)
	}
	s.ready.Store(false)
	if code := do(t, s, "GET", "/healthz", "").Code; code != http.StatusServiceUnavailable {
		t.Errorf("/healthz while stopping: %d, want 503", code)
	}
}

func TestGCHandlerMountedAtFlagPath(t *testing.T) {
	cfg := testConfig()
	cfg.adminGC = "/debug/mapprobe/gc"
	s, h := newTestService(t, cfg)
	for n := range 3 {
		s.store.Put(skuN(n), item("x", 1))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, cfg.adminGC, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", cfg.adminGC, rec.Code, rec.Body.String())
	}
	var sample struct {
		GC        bool   `json:"gc"`
		LiveBytes uint64 `json:"live_bytes"`
		Entries   int    `json:"entries"`
		Maps      []struct {
			Map       string `json:"map"`
			Entries   int    `json:"entries"`
			HighWater int    `json:"high_water"`
			GoType    string `json:"go_type"`
			Owned     struct {
				Key     float64 `json:"key_bytes_per_entry"`
				Value   float64 `json:"value_bytes_per_entry"`
				Sampled int     `json:"sampled"`
			} `json:"owned"`
		} `json:"maps"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &sample); err != nil {
		t.Fatal(err)
	}
	if len(sample.Maps) != 1 || sample.Maps[0].Map != "items" || sample.Maps[0].Entries != 3 ||
		sample.Maps[0].HighWater != 3 || sample.Maps[0].GoType != goType || sample.Entries != 3 || !sample.GC || sample.LiveBytes == 0 {
		t.Errorf("sample = %+v; want one map \"items\" of %s with 3 entries", sample, goType)
	}
	// Each entry owns its SKU's 10 bytes (a tiny allocation, charged its
	// 16-byte block) and a 40-byte Item in the 48-byte size class; the three
	// share one name, "x", charged once (a block) over the sample.
	if o := sample.Maps[0].Owned; o.Sampled != 3 || o.Key != 16 || o.Value != 48+16.0/3 {
		t.Errorf("owned = %+v; want 3 entries sampled, 16 B of key and 48 + 16/3 B of value each", o)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, cfg.adminGC, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d, want 405", cfg.adminGC, rec.Code)
	}
}

func TestAdminGCPathClash(t *testing.T) {
	cfg := testConfig()
	cfg.adminGC = "/items/1" // clashes with PUT /items/{sku}
	s, err := newService(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.routes(); err == nil || !strings.Contains(err.Error(), "--admin-gc") {
		t.Errorf("routes() with a clashing --admin-gc: err = %v", err)
	}
}

func TestMetricsExposeTheItemsMap(t *testing.T) {
	cfg := testConfig()
	cfg.peers = []string{"127.0.0.1:1"}
	s, _ := newTestService(t, cfg)
	s.store.Put("sku-000001", item("a", 1))
	s.store.Put("sku-000002", item("b", 1))
	body := do(t, s, "GET", "/metrics", "").Body.String()
	for _, want := range []string{
		`mapquake_store_entries{map="items"} 2`,
		`mapquake_store_high_water_entries{map="items"} 2`,
		`mapquake_store_info{go_type="` + goType + `",key_type="string",map="items",value_type="` + valueType + `"} 1`,
		`mapquake_store_entry_owned_bytes{map="items",part="key"} `,
		`mapquake_store_entry_owned_bytes{map="items",part="value"} `,
		`mapquake_store_entry_owned_sampled_entries{map="items"} 2`,
		"mapquake_heap_live_bytes ",
		`mapquake_replication_backlog{peer="127.0.0.1:1"} 0`,
		`mapquake_replication_dropped_total{peer="127.0.0.1:1"} 0`,
		"go_gc_heap_live_bytes ",
		"inventory_evictions_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
