package store

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// wantGoType is each pattern's Info.GoType with {V} for the value type and
// the default options. It pins the strings the Python model parses.
var wantGoType = map[string]string{
	"mutexmap":     "map[string]{V}",
	"syncmap":      "sync.Map[string]{V}",
	"shardedmap":   "[32]map[string]{V}",
	"ifacemap":     "map[string]any(struct{Value {V}; Version uint64})",
	"structmap":    "map[string]struct{Value {V}; Version uint64}",
	"deleteretain": "map[string]{V}",
	"ptrcycle":     "map[string]*struct{Value {V}; Prev unsafe.Pointer; Next unsafe.Pointer; Meta *struct{Node unsafe.Pointer; Seq uint64}}",
	"ringbuffer":   "map[string]*struct{In chan {V}; Ack chan struct{}; Stop chan struct{}; Mu sync.Mutex; Buf []{V}; Next int; Count int}",
	"racymap":      "map[string]{V}",
	"subslice":     "map[string]{V}",
}

func TestNamesMatchPatterns(t *testing.T) {
	names := Names()
	if len(names) != len(wantGoType) {
		t.Fatalf("Names() = %v, want the %d patterns of wantGoType", names, len(wantGoType))
	}
	for _, name := range names {
		if _, ok := wantGoType[name]; !ok {
			t.Errorf("Names() has %q, which the tests do not know", name)
		}
	}
}

// body is the request body the tests send as value i; int64 stores need
// decimal text.
func body(valueType string, i int) []byte {
	if valueType == "int64" {
		return []byte(strconv.Itoa(i))
	}
	return []byte("value-" + strconv.Itoa(i))
}

// encoded is what Get must answer after Put(body): arrays come back
// zero-padded to their length.
func encoded(valueType string, raw []byte) []byte {
	var n int
	if _, err := fmt.Sscanf(valueType, "[%d]byte", &n); err == nil {
		out := make([]byte, n)
		copy(out, raw)
		return out
	}
	return raw
}

func openStore(t *testing.T, name string, opts Options) Store {
	t.Helper()
	s, err := New(name, opts)
	if err != nil {
		t.Fatalf("New(%q, %+v): %v", name, opts, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestConformance runs the contract every store keeps, for every value type.
func TestConformance(t *testing.T) {
	for _, name := range Names() {
		for _, vt := range ValueTypes() {
			t.Run(name+"/"+vt, func(t *testing.T) {
				s := openStore(t, name, Options{ValueType: vt})
				checkInfo(t, s, name, vt)
				checkSequential(t, s, vt)
				if name != "racymap" {
					checkConcurrent(t, s, vt)
				}
			})
		}
	}
}

func checkInfo(t *testing.T, s Store, name, vt string) {
	t.Helper()
	want := Info{Store: name, KeyType: "string", ValueType: vt, GoType: strings.ReplaceAll(wantGoType[name], "{V}", vt)}
	if got := s.Info(); got != want {
		t.Errorf("Info() = %+v, want %+v", got, want)
	}
}

func checkSequential(t *testing.T, s Store, vt string) {
	t.Helper()
	mustPut := func(key string, i int, wantCreated bool) {
		t.Helper()
		created, err := s.Put(key, body(vt, i))
		if err != nil || created != wantCreated {
			t.Fatalf("Put(%q, %d) = %v, %v; want %v, nil", key, i, created, err, wantCreated)
		}
	}
	wantGet := func(key string, i int) {
		t.Helper()
		got, ok := s.Get(key)
		if want := encoded(vt, body(vt, i)); !ok || !bytes.Equal(got, want) {
			t.Fatalf("Get(%q) = %q, %v; want %q, true", key, got, ok, want)
		}
	}
	wantMissing := func(key string) {
		t.Helper()
		if got, ok := s.Get(key); ok {
			t.Fatalf("Get(%q) = %q, true; want absent", key, got)
		}
	}
	wantSizes := func(n, high int) {
		t.Helper()
		if s.Len() != n || s.HighWater() != high {
			t.Fatalf("Len, HighWater = %d, %d; want %d, %d", s.Len(), s.HighWater(), n, high)
		}
	}

	wantSizes(0, 0)
	wantMissing("a")
	mustPut("a", 1, true)
	wantGet("a", 1)
	mustPut("a", 2, false)
	wantGet("a", 2)
	mustPut("b", 3, true)
	wantSizes(2, 2)

	if !s.Delete("a") {
		t.Fatal(`Delete("a") = false, want true`)
	}
	if s.Delete("a") {
		t.Fatal(`second Delete("a") = true, want false`)
	}
	wantMissing("a")
	wantGet("b", 3)
	wantSizes(1, 2) // the high-water mark does not come down
	mustPut("a", 4, true)
	wantSizes(2, 2)
	mustPut("c", 5, true)
	wantSizes(3, 3)
	for _, k := range []string{"a", "b", "c"} {
		s.Delete(k)
	}
	wantSizes(0, 3)
}

func checkConcurrent(t *testing.T, s Store, vt string) {
	t.Helper()
	const writers, perWriter = 8, 40
	key := func(w, k int) string { return fmt.Sprintf("w%d-k%d", w, k) }
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for k := range perWriter {
				if _, err := s.Put(key(w, k), body(vt, w*perWriter+k)); err != nil {
					t.Errorf("Put: %v", err)
				}
				if _, err := s.Put("hot", body(vt, k)); err != nil {
					t.Errorf("Put hot: %v", err)
				}
			}
		})
	}
	wg.Wait()
	total := writers*perWriter + 1
	if s.Len() != total || s.HighWater() != total {
		t.Fatalf("after concurrent Puts: Len, HighWater = %d, %d; want %d, %d", s.Len(), s.HighWater(), total, total)
	}
	for w := range writers {
		for k := range perWriter {
			got, ok := s.Get(key(w, k))
			if want := encoded(vt, body(vt, w*perWriter+k)); !ok || !bytes.Equal(got, want) {
				t.Fatalf("Get(%q) = %q, %v; want %q", key(w, k), got, ok, want)
			}
		}
	}
	for w := range writers {
		wg.Go(func() {
			for k := range perWriter {
				if !s.Delete(key(w, k)) {
					t.Errorf("Delete(%q) = false", key(w, k))
				}
			}
		})
	}
	wg.Wait()
	if s.Len() != 1 || s.HighWater() != total {
		t.Fatalf("after concurrent Deletes: Len, HighWater = %d, %d; want 1, %d", s.Len(), s.HighWater(), total)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want error // nil: only check that there is an error naming the knob
		text string
	}{
		{"btree", Options{}, ErrUnknownStore, "mutexmap"},
		{"mutexmap", Options{ValueType: "[7]byte"}, ErrUnknownValueType, "[32]byte"},
		{"shardedmap", Options{Shards: -1}, nil, "Shards"},
		{"deleteretain", Options{RebuildEvery: -5}, nil, "RebuildEvery"},
		{"ringbuffer", Options{RingSize: -1}, nil, "RingSize"},
		{"subslice", Options{SliceBuffer: -1}, nil, "SliceBuffer"},
	} {
		_, err := New(tc.name, tc.opts)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("New(%q, %+v) = %v; want an error wrapping %v that mentions %q", tc.name, tc.opts, err, tc.want, tc.text)
		}
	}
}

func TestOptionsShapeGoType(t *testing.T) {
	s := openStore(t, "shardedmap", Options{ValueType: "int64", Shards: 4})
	if got, want := s.Info().GoType, "[4]map[string]int64"; got != want {
		t.Errorf("GoType = %q, want %q", got, want)
	}
}

func TestBadValueLeavesStoreUnchanged(t *testing.T) {
	s := openStore(t, "mutexmap", Options{ValueType: "int64"})
	if _, err := s.Put("k", []byte("twelve")); !errors.Is(err, ErrBadValue) {
		t.Fatalf("Put(non-decimal) error = %v, want ErrBadValue", err)
	}
	if s.Len() != 0 || s.HighWater() != 0 {
		t.Fatalf("a rejected Put changed the store: Len %d, HighWater %d", s.Len(), s.HighWater())
	}
}
