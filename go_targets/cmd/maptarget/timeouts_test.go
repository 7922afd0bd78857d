package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// serveSlow serves h with newHTTPServer(readTimeout) on a real listener.
func serveSlow(t *testing.T, h http.Handler, readTimeout time.Duration) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h, readTimeout)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

// trickle writes prefix, then one byte every interval until the server
// closes the connection or giveUp passes; it returns how long the connection
// stayed open.
func trickle(t *testing.T, addr, prefix string, interval, giveUp time.Duration) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan struct{})
	go func() { // the server's answer, if any, then EOF
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	if _, err := conn.Write([]byte(prefix)); err != nil {
		return time.Since(start)
	}
	for time.Since(start) < giveUp {
		select {
		case <-closed:
			return time.Since(start)
		case <-time.After(interval):
		}
		if _, err := conn.Write([]byte("x")); err != nil {
			return time.Since(start)
		}
	}
	return time.Since(start)
}

func TestSlowClientsAreCutOff(t *testing.T) {
	var mu sync.Mutex
	var bodyErr error
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		mu.Lock()
		bodyErr = err
		mu.Unlock()
	})
	addr := serveSlow(t, h, 500*time.Millisecond)
	var wg sync.WaitGroup
	for name, prefix := range map[string]string{
		"slow headers": "PUT /kv/k HTTP/1.1\r\nHost: x\r\nX-Pad: ",
		"slow body":    "PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
	} {
		for range 20 { // many slow clients at once, as in the report
			wg.Add(1)
			go func() {
				defer wg.Done()
				if d := trickle(t, addr, prefix, 50*time.Millisecond, 5*time.Second); d > 2*time.Second {
					t.Errorf("%s: connection open %v, want about 0.5s", name, d)
				}
			}()
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if bodyErr == nil {
		t.Error("the handler read a trickling body without an error")
	}
}

func TestIdleAndWriteTimeoutsAreSet(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler(), time.Second)
	if srv.IdleTimeout <= 0 || srv.IdleTimeout > 2*time.Minute || srv.WriteTimeout <= 0 || srv.ReadHeaderTimeout > time.Second {
		t.Errorf("timeouts: header %v read %v write %v idle %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
	}
}
