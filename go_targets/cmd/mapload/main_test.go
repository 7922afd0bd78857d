package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--addr is required"},
		{[]string{"--addr", "192.0.2.1:9090"}, "refused: mapload only sends to loopback (see --allow), not 192.0.2.1"},
		{[]string{"--addr", "198.18.0.1:9090"}, "refused: mapload only sends to loopback (see --allow), not 198.18.0.1"},
		{[]string{"--addr", "192.0.2.1:9090", "--allow", "198.18.0.0/15"}, "refused: mapload only sends to loopback or 198.18.0.0/15"},
		{[]string{"--addr", "198.18.0.1:9090", "--allow", "198.18.0.1/15"}, `--allow "198.18.0.1/15": 198.18.0.1/15 has host bits set`},
		{[]string{"--addr", "198.18.0.1:9090", "--allow", "a b"}, `"a b" is neither a network, an IP address nor a host name`},
		{[]string{"--addr", "127.0.0.1:1", "--protocol", "http", "--batch", "10"}, "HTTP has no batch call"},
		{[]string{"--addr", "127.0.0.1:1", "--keys", "hot"}, `--keys "hot" is not one of: sequential, uniform, zipf`},
		{[]string{"--addr", "127.0.0.1:1", "--ops", "many"}, `invalid value "many" for flag --ops`},
		{[]string{"--addr", "127.0.0.1:1", "--duration", "0s"}, "--duration 0s is invalid"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != 2 || stdout.Len() != 0 ||
			!strings.Contains(stderr.String(), tc.want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}

// TestAllowAcceptsTheListedNetwork: with --allow 198.18.0.0/15 the address
// passes the check and mapload tries to send (no traffic leaves: the run
// context is already cancelled, so no request starts).
func TestAllowAcceptsTheListedNetwork(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--addr", "198.18.0.1:9090", "--allow", "127.0.0.0/8,::1/128,198.18.0.0/15", "--protocol", "http",
		"--ops", "1", "--concurrency", "1", "--request-timeout", "100ms"}
	code := run(ctx, args, &stdout, &stderr)
	var s map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || strings.Contains(stderr.String(), "refused") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	if s["addr"] != "198.18.0.1:9090" || s["stopped_by"] != "cancelled" || s["requests"] != 0.0 {
		t.Errorf("summary %v", s)
	}
}

func TestErrorsExitOneWithSummary(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0") // a port that refuses once closed
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	for _, tc := range []struct {
		extra []string
		code  int
	}{{nil, 1}, {[]string{"--allow-errors"}, 0}} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--addr", addr, "--protocol", "http", "--ops", "3", "--concurrency", "1"}, tc.extra...)
		code := run(context.Background(), args, &stdout, &stderr)
		var s map[string]any
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil || code != tc.code {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", tc.extra, code, stdout.String(), stderr.String())
		}
		if s["errors"] != 3.0 || s["ops"] != 0.0 || s["protocol"] != "http" || s["first_error"] == "" {
			t.Errorf("summary %v", s)
		}
	}
}
