package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--http", "127.0.0.1:0", "--admin-gc", "/debug/mapprobe/gc",
		"--peers", "10.0.0.2:8080, 10.0.0.3:8080,", "--capacity", "50", "--queue", "7", "--leak"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.httpAddr != "127.0.0.1:0" || cfg.adminGC != "/debug/mapprobe/gc" || len(cfg.peers) != 2 ||
		cfg.peers[1] != "10.0.0.3:8080" || cfg.capacity != 50 || cfg.queue != 7 || !cfg.leak {
		t.Errorf("parsed %+v", cfg)
	}
	defaults, err := parseFlags(nil, io.Discard)
	if err != nil || defaults.adminGC != "" || defaults.peers != nil || defaults.leak || defaults.capacity != 100000 {
		t.Errorf("defaults %+v, %v", defaults, err)
	}
	for _, args := range [][]string{
		{"--http", "8080"},
		{"--admin-gc", "debug/gc"},
		{"--admin-gc", "/debug/{x}"},
		{"--peers", "nohost"},
		{"--peers", ":8080"},
		{"--capacity", "0"},
		{"--queue", "-1"},
		{"--peer-timeout", "0s"},
		{"stray"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunServesAndStopsGracefully starts the whole service on a free port,
// finds the port in the "serving" log line, uses it, then cancels (what
// SIGTERM does) and expects a clean stop.
func TestRunServesAndStopsGracefully(t *testing.T) {
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	cfg := testConfig()
	cfg.adminGC = "/debug/mapprobe/gc"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, log) }()

	var addr string
	waitFor(t, "the serving log line", func() bool {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct {
				Msg      string `json:"msg"`
				HTTPAddr string `json:"http_addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr = rec.HTTPAddr
				return true
			}
		}
		return false
	})
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/items/sku-000005", strings.NewReader(`{"name":"nut","qty":1,"price_cents":5}`))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT: %s", resp.Status)
	}
	resp, err = client.Post("http://"+addr+cfg.adminGC, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"map":"items","entries":1`) {
		t.Fatalf("POST %s: %s %s", cfg.adminGC, resp.Status, body)
	}
	client.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped","clean":true`) {
		t.Errorf("no clean stop in the log:\n%s", logs.String())
	}
}
