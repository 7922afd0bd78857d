package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mapquake/mapquake/go_targets/internal/loadgen"
)

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--store", "nosuchstore"}, []string{`--store "nosuchstore" is not one of:`, "syncmap", "mutexmap"}},
		{[]string{}, []string{"--store is required", "syncmap"}},
		{[]string{"--store", "syncmap", "--value-type", "[3]byte"}, []string{`--value-type "[3]byte"`, "[32]byte", "int64"}},
		{[]string{"--store", "syncmap", "--peer-queue", "lossy"}, []string{`--peer-queue "lossy" is not one of: bounded, unbounded`}},
		{[]string{"--store", "syncmap", "--shards", "-3"}, []string{`invalid value "-3" for flag --shards: want an integer ≥ 0`}},
		{[]string{"--store", "syncmap", "--log-format", "xml"}, []string{`--log-format "xml" is not one of: json, text`}},
		{[]string{"--store", "syncmap", "--http-addr", "nope"}, []string{`--http-addr "nope" is not HOST:PORT`}},
		{[]string{"--store", "syncmap", "--peers", "127.0.0.1:7000,bad"}, []string{`--peers "bad" is not HOST:PORT`}},
		{[]string{"--store", "syncmap", "--peer-queue-capacity", "0"}, []string{"--peer-queue-capacity 0"}},
		{[]string{"--frobnicate"}, []string{"unknown flag --frobnicate"}},
		{[]string{"--store", "syncmap", "--max-value-bytes", "8000000"}, []string{"must exceed the value limit"}},
		{[]string{"--store", "syncmap", "--http-read-timeout", "0s"}, []string{"--http-read-timeout 0s is invalid"}},
		{[]string{"--store", "syncmap", "--max-inflight-bytes", "1000"}, []string{"below the request limit"}},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		msg := stderr.String()
		if code != 2 || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "maptarget: ") {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, msg)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q lacks %q", tc.args, msg, w)
			}
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &stdout, io.Discard); code != 0 || !strings.HasPrefix(stdout.String(), "maptarget ") {
		t.Errorf("--version: %d %q", code, stdout.String())
	}
}

// A StatefulSet's replicas share one peer list: --self drops the replica's own entry, only it.
func TestSelfLeftOutOfPeers(t *testing.T) {
	c, err := parseFlags([]string{"--store", "syncmap", "--peers", "a-0.s:9090, a-1.s:9090,a-2.s:9090", "--self", "a-1.s:9090"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.peers, ","); got != "a-0.s:9090,a-2.s:9090" {
		t.Errorf("peers %q", got)
	}
}

// syncBuffer is a bytes.Buffer safe to write from the process's stderr copier
// while the test reads it.
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

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// buildBinary builds maptarget once per test run (not with -race: it is a
// child process).
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the maptarget binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "maptarget-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "maptarget")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary != "" {
		_ = os.RemoveAll(filepath.Dir(binary))
	}
	os.Exit(code)
}

type proc struct {
	cmd       *exec.Cmd
	stderr    *syncBuffer
	done      chan struct{}
	readyFile string
	HTTPAddr  string `json:"http_addr"`
	GRPCAddr  string `json:"grpc_addr"`
	PID       int    `json:"pid"`
}

// start runs maptarget and waits for its ready file. The process is killed
// in t.Cleanup whatever happens.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	bin := buildBinary(t)
	p := &proc{stderr: &syncBuffer{}, done: make(chan struct{}), readyFile: filepath.Join(t.TempDir(), "ready.json")}
	args = append([]string{"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--ready-file", p.readyFile}, args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "MAPTARGET_ADMIN_TOKEN="+testAdminToken) // every replica of a run shares it
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if data, err := os.ReadFile(p.readyFile); err == nil {
			if err := json.Unmarshal(data, p); err != nil {
				t.Fatalf("ready file %q: %v", data, err)
			}
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("maptarget exited before serving: %v\n%s", p.cmd.ProcessState, p.stderr)
		case <-deadline:
			t.Fatalf("maptarget not ready after 30s:\n%s", p.stderr)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("maptarget ignored SIGTERM for 15s:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

// testAdminToken is the admin token start gives every maptarget.
const testAdminToken = "test-admin-token"

// httpDo sends a request with the admin token.
func httpDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	return httpDoAuth(t, method, url, "Bearer "+testAdminToken)
}

func httpDoAuth(t *testing.T, method, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type gcStats struct {
	LiveBytes int64  `json:"live_bytes"`
	Entries   int64  `json:"entries"`
	Store     string `json:"store"`
	GoType    string `json:"go_type"`
}

func adminGC(t *testing.T, httpAddr string) gcStats {
	t.Helper()
	code, body := httpDo(t, "POST", "http://"+httpAddr+"/admin/gc")
	var s gcStats
	if code != 200 || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("/admin/gc: %d %q", code, body)
	}
	return s
}

func TestEndToEnd(t *testing.T) {
	p := start(t, "--store", "syncmap", "--value-type", "[32]byte")
	for _, auth := range []string{"", "Bearer wrong", testAdminToken} {
		if code, body := httpDoAuth(t, "POST", "http://"+p.HTTPAddr+"/admin/gc", auth); code != http.StatusUnauthorized {
			t.Errorf("/admin/gc with authorization %q: %d %s, want 401", auth, code, body)
		}
	}
	if p.PID != p.cmd.Process.Pid {
		t.Errorf("ready file pid %d, process %d", p.PID, p.cmd.Process.Pid)
	}
	if code, body := httpDo(t, "GET", "http://"+p.HTTPAddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	s, err := loadgen.Run(context.Background(), loadgen.Config{
		Addr: p.GRPCAddr, Protocol: "grpc", Ops: 100000, Keys: loadgen.Sequential, KeySpace: 100000,
		Concurrency: 4, Batch: 100, Duration: 60 * time.Second, ValueSize: 32,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ops != 100000 || s.Errors != 0 || s.DistinctKeys != 100000 {
		t.Fatalf("load: %+v", s)
	}
	_, metrics := httpDo(t, "GET", "http://"+p.HTTPAddr+"/metrics")
	for _, line := range []string{
		"mapquake_store_entries 100000",
		"mapquake_store_high_water_entries 100000",
		"mapquake_writes_total 100000",
		`mapquake_ops_total{op="batch_put",protocol="grpc",result="ok"} 1000`,
		`mapquake_build_info{go_version="go1.`,
		"go_gc_heap_live_bytes ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(metrics, "\n"+line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
	gc := adminGC(t, p.HTTPAddr)
	if gc.LiveBytes <= 0 || gc.Entries != 100000 || gc.Store != "syncmap" || gc.GoType != "sync.Map[string][32]byte" {
		t.Errorf("admin/gc: %+v", gc)
	}

	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr)
	}
	logs := p.stderr.String()
	var serving, stopped map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		switch rec["msg"] {
		case "serving":
			serving = rec
		case "stopped":
			stopped = rec
		}
	}
	if serving == nil || serving["http_addr"] != p.HTTPAddr || serving["grpc_addr"] != p.GRPCAddr {
		t.Errorf("serving line %v, ready file %+v", serving, p)
	}
	if stopped == nil || stopped["clean"] != true {
		t.Errorf("no clean stop logged:\n%s", logs)
	}
	if _, err := os.Stat(p.readyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file left behind: %v", err)
	}
}

// TestReplicasAndPartition: a's writes reach b; with b stopped they queue
// (unbounded), and they drain into a restarted b on the same port.
func TestReplicasAndPartition(t *testing.T) {
	b := start(t, "--store", "mutexmap", "--value-type", "[8]byte")
	a := start(t, "--store", "mutexmap", "--value-type", "[8]byte", "--peers", b.GRPCAddr, "--peer-queue", "unbounded")
	load := func(prefix string, n int64) {
		t.Helper()
		s, err := loadgen.Run(context.Background(), loadgen.Config{
			Addr: a.GRPCAddr, Protocol: "grpc", Ops: n, Keys: loadgen.Sequential, KeySpace: n,
			Concurrency: 2, Batch: 50, Duration: 30 * time.Second, ValueSize: 8, KeyPrefix: prefix,
		})
		if err != nil || s.Errors != 0 {
			t.Fatalf("load: %+v %v", s, err)
		}
	}
	waitEntries := func(p *proc, want int64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for adminGC(t, p.HTTPAddr).Entries != want {
			if time.Now().After(deadline) {
				t.Fatalf("entries never reached %d:\n%s", want, p.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	load("a", 1000)
	waitEntries(b, 1000)

	if code := b.stop(t); code != 0 {
		t.Fatalf("b exit %d", code)
	}
	load("c", 500)
	backlog := func() string {
		_, m := httpDo(t, "GET", "http://"+a.HTTPAddr+"/metrics")
		for line := range strings.SplitSeq(m, "\n") {
			if strings.HasPrefix(line, "mapquake_replication_backlog{") {
				return line
			}
		}
		return ""
	}
	if got, want := backlog(), fmt.Sprintf(`mapquake_replication_backlog{peer=%q} 500`, b.GRPCAddr); got != want {
		t.Fatalf("backlog line %q, want %q", got, want)
	}

	b2 := start(t, "--store", "mutexmap", "--value-type", "[8]byte", "--grpc-addr", b.GRPCAddr)
	waitEntries(b2, 500) // a fresh b gets exactly the queued writes
	deadline := time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(backlog(), "} 0") {
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained: %q", backlog())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []*proc{a, b2} {
		if code := p.stop(t); code != 0 {
			t.Errorf("exit %d:\n%s", code, p.stderr)
		}
	}
}
