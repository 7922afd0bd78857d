package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestStoreExpiresOnlyWhatIsDue(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore(4, 5*time.Second, false)
	s.now = func() time.Time { return now }
	s.Put("a", "alice", []byte("t1"))
	now = now.Add(3 * time.Second)
	s.Put("b", "bob", []byte("t2"))
	now = now.Add(3 * time.Second) // a is 6 s old, b 3 s
	if n := s.Expire(); n != 1 {
		t.Fatalf("Expire() = %d, want 1", n)
	}
	if _, ok := s.Get("a"); ok {
		t.Error("a is still there after its TTL")
	}
	if _, ok := s.Get("b"); !ok {
		t.Error("b expired early")
	}
	if len(s.index) != 1 || len(s.lastSeen) != 1 || len(s.versions) != 1 {
		t.Errorf("the other maps keep expired keys: index %d, last_seen %d, versions %d",
			len(s.index), len(s.lastSeen), len(s.versions))
	}
	if s.Len() != 1 || s.HighWater() != 2 || s.Expired() != 1 {
		t.Errorf("Len %d HighWater %d Expired %d, want 1 2 1", s.Len(), s.HighWater(), s.Expired())
	}
}

func TestAKeptStoreNeverExpires(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore(1, time.Second, true)
	s.now = func() time.Time { return now }
	s.Put("a", "alice", []byte("t"))
	now = now.Add(time.Hour)
	if n := s.Expire(); n != 0 || s.Len() != 1 {
		t.Fatalf("Expire() = %d, Len %d: a kept store lost a session", n, s.Len())
	}
}

func TestEntriesIteratorsStopWhenTold(t *testing.T) {
	s := NewStore(4, time.Second, true)
	for _, k := range []string{"a", "b", "c"} {
		s.Put(k, "u", []byte("t"))
	}
	n := 0
	s.eachSession(func(string, *session) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("eachSession yielded %d entries after being told to stop at 2", n)
	}
	n = 0
	s.eachSession(func(string, *session) bool { n++; return true })
	if n != 3 {
		t.Errorf("eachSession yielded %d of 3", n)
	}
	s.mu.Lock() // the iterators released the lock
	s.mu.Unlock()
}

func newTestService(t *testing.T, args ...string) (*service, *httptest.Server) {
	t.Helper()
	cfg, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.routes())
	t.Cleanup(func() { srv.Close(); s.close() })
	return s, srv
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPutThenGet(t *testing.T) {
	_, srv := newTestService(t)
	if code, body := do(t, "PUT", srv.URL+"/sessions/sess-1", "user=alice\ntoken=abc\nattrs=xyz\n"); code != 204 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	code, body := do(t, "GET", srv.URL+"/sessions/sess-1", "")
	if code != 200 || body != "user=alice\nhits=1\n" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, _ := do(t, "GET", srv.URL+"/sessions/nope", ""); code != 404 {
		t.Errorf("GET of an unknown key: %d, want 404", code)
	}
}

func TestBadInputGetsAClearError(t *testing.T) {
	_, srv := newTestService(t)
	for _, tc := range []struct {
		key, body string
		code      int
		says      string
	}{
		{"sess-1", "user=alice\n", 400, "user and token"},
		{"sess-1", "user=alice\ntoken=t\ncolour=red\n", 400, `unknown field "colour"`},
		{"a.b", "user=alice\ntoken=t\n", 400, "only letters"},
		{"sess-1", "user=alice\ntoken=t\nattrs=" + strings.Repeat("x", bodyBuffer), 413, "body over"},
	} {
		code, body := do(t, "PUT", srv.URL+"/sessions/"+tc.key, tc.body)
		if code != tc.code || !strings.Contains(body, tc.says) {
			t.Errorf("PUT %s %.30q: %d %q, want %d saying %q", tc.key, tc.body, code, body, tc.code, tc.says)
		}
	}
}

// heldAfter is the live heap a service holds after n PUTs of new keys (GC'd, before and after).
func heldAfter(t *testing.T, s *service, n int) int64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		r := httptest.NewRequest("PUT", "/sessions/k", strings.NewReader("user=alice\ntoken=abcdefgh\n"))
		r.SetPathValue("key", fmt.Sprintf("k%d", i))
		if code, err := s.doPut(r); code != http.StatusNoContent {
			t.Fatalf("PUT %d: %d %v", i, code, err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

func TestPinKeepsEachRequestBuffer(t *testing.T) {
	const n = 2000
	healthy, _ := newTestService(t, "--keep")
	pinned, _ := newTestService(t, "--keep", "--pin")
	h, p := heldAfter(t, healthy, n), heldAfter(t, pinned, n)
	// Healthy: a few hundred bytes per session; pinned: the 4 KiB buffer each token is cut from,
	// though the token itself looks 8 bytes long (bytes.Split caps it at its line).
	if h > n*1024 || p < n*bodyBuffer {
		t.Errorf("%d sessions hold %d B healthy, %d B pinned: want under %d and over %d", n, h, p, n*1024, n*bodyBuffer)
	}
	pinned.store.mu.Lock()
	defer pinned.store.mu.Unlock()
	if tok := pinned.store.sessions["k0"].Token; string(tok) != "abcdefgh" || cap(tok) != 8 {
		t.Errorf("pinned token %q cap %d, want abcdefgh cap 8", tok, cap(tok))
	}
}

func TestLeaksAreSeededOnlyWhenAsked(t *testing.T) {
	for _, bug := range []string{"none", "leak-outside", "goroutine-leak"} {
		s, _ := newTestService(t, "--bug", bug)
		goroutines := runtime.NumGoroutine()
		heldAfter(t, s, 100)
		audit, leaked := len(s.audit), runtime.NumGoroutine()-goroutines
		want := map[string][2]int{"none": {0, 0}, "leak-outside": {100, 0}, "goroutine-leak": {0, 100}}[bug]
		if audit != want[0] || (want[1] > 0 && leaked < want[1]) || (want[1] == 0 && leaked > 5) {
			t.Errorf("--bug %s: %d bodies kept, %d goroutines more; want %d and %d", bug, audit, leaked, want[0], want[1])
		}
		s.close()
	}
}

func TestFlagsNameWhatIsWrong(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--maps", "3"}, "--maps 3: must be 1 or 4"},
		{[]string{"--bug", "oops"}, `--bug "oops": must be one of none, leak-outside`},
		{[]string{"--http", "nowhere"}, `--http "nowhere"`},
	} {
		if _, err := parseFlags(tc.args, io.Discard); err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v, want an error saying %q", tc.args, err, tc.says)
		}
	}
	cfg, err := parseFlags([]string{"--pin"}, io.Discard)
	if err != nil || cfg.bug != "pin" {
		t.Errorf("--pin: bug %q, err %v", cfg.bug, err)
	}
}
