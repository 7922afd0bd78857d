package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mapquake/mapquake/go_targets/internal/node"
)

func TestInvalidUTF8KeyIs400(t *testing.T) {
	srv, _ := newServer(t, "mutexmap", "[]byte")
	for _, method := range []string{"PUT", "GET", "DELETE"} {
		r := call(t, srv, method, "/kv/k%FF%FE", "v")
		if r.code != http.StatusBadRequest || !strings.Contains(r.body, "UTF-8") {
			t.Errorf("%s invalid UTF-8 key: %d %s", method, r.code, r.body)
		}
	}
}

// rawPut sends a PUT whose headers declare contentLength but whose body is
// only body, and returns the status line answered within two seconds.
func rawPut(t *testing.T, addr, contentLength, body string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Write([]byte("PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: " + contentLength + "\r\n\r\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a PUT declaring %s bytes: %v", contentLength, err)
	}
	return strings.TrimSpace(line)
}

func TestAbsurdContentLengthIsRefusedBeforeTheBody(t *testing.T) {
	srv, _, n := newServerWith(t, "mutexmap", "[]byte", node.Limits{}, Options{})
	if line := rawPut(t, srv.Listener.Addr().String(), "1000000000000", "0123456789"); !strings.Contains(line, "413") {
		t.Errorf("Content-Length 1e12: %q, want 413", line)
	}
	if got := n.InflightBytes(); got != 0 {
		t.Errorf("%d bytes held after the refusal", got)
	}
}

func TestValueLimitAndInflightBudget(t *testing.T) {
	srv, _, n := newServerWith(t, "mutexmap", "[]byte",
		node.Limits{MaxValueBytes: 1000, MaxRequestBytes: 4000, MaxInflightBytes: 8000}, Options{})
	if r := call(t, srv, "PUT", "/kv/big", strings.Repeat("v", 1001)); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("value over the node's limit: %d %s", r.code, r.body)
	}
	release, err := n.Acquire(7600) // other requests hold most of the budget
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, srv, "PUT", "/kv/k", strings.Repeat("v", 500))
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body, "retry") {
		t.Errorf("put with the budget spent: %d %s, want 503", r.code, r.body)
	}
	if r := call(t, srv, "PUT", "/kv/k", strings.Repeat("v", 300)); r.code != http.StatusCreated {
		t.Errorf("a put that fits: %d %s", r.code, r.body)
	}
	release()
	if r := call(t, srv, "PUT", "/kv/k", strings.Repeat("v", 500)); r.code != http.StatusNoContent {
		t.Errorf("put after release: %d %s", r.code, r.body)
	}
	if got := n.InflightBytes(); got != 0 {
		t.Errorf("%d bytes still held", got)
	}
}
