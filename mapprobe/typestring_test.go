package mapprobe

import (
	"reflect"
	"testing"
	"time"
	"unsafe"
)

type point struct {
	X, Y int32
}

type session struct {
	ID    [16]byte
	User  string
	TTL   time.Duration // a named stdlib type: expanded to int64
	tags  []string
	point        // embedded: rendered by its type name
	Extra any    `json:"extra"`
	Err   error  // a non-empty interface is still two words
	Meta  *point // pointer to a named struct: expanded
}

type listNode struct {
	Value int64
	Next  *listNode
	Kids  []listNode
	Index map[string]*listNode
}

type celsius float64

type generic[V any] struct {
	Value   V
	Version uint64
}

func TestTypeString(t *testing.T) {
	for _, tc := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[int64](), "int64"},
		{reflect.TypeFor[uint8](), "byte"},
		{reflect.TypeFor[[]byte](), "[]byte"},
		{reflect.TypeFor[[32]byte](), "[32]byte"},
		{reflect.TypeFor[[4][2]uint16](), "[4][2]uint16"},
		{reflect.TypeFor[string](), "string"},
		{reflect.TypeFor[rune](), "int32"},
		{reflect.TypeFor[uintptr](), "uintptr"},
		{reflect.TypeFor[complex128](), "complex128"},
		{reflect.TypeFor[celsius](), "float64"},
		{reflect.TypeFor[time.Duration](), "int64"},
		{reflect.TypeFor[any](), "any"},
		{reflect.TypeFor[interface{ M() }](), "any"},
		{reflect.TypeFor[unsafe.Pointer](), "unsafe.Pointer"},
		{reflect.TypeFor[*int](), "*int"},
		{reflect.TypeFor[**[8]byte](), "**[8]byte"},
		{reflect.TypeFor[map[string][]int](), "map[string][]int"},
		{reflect.TypeFor[map[[2]int]map[string]any](), "map[[2]int]map[string]any"},
		{reflect.TypeFor[struct{}](), "struct{}"},
		{reflect.TypeFor[point](), "struct{X int32; Y int32}"},
		{reflect.TypeFor[generic[[32]byte]](), "struct{Value [32]byte; Version uint64}"},
		{reflect.TypeFor[chan int](), "chan int"},
		{reflect.TypeFor[<-chan int](), "<-chan int"},
		{reflect.TypeFor[chan<- string](), "chan<- string"},
		{reflect.TypeFor[chan (<-chan int)](), "chan (<-chan int)"},
		{reflect.TypeFor[func()](), "func()"},
		{reflect.TypeFor[func(int, ...string) error](), "func(int, ...string) any"},
		{reflect.TypeFor[func() (int, bool)](), "func() (int, bool)"},
		{reflect.TypeFor[listNode](), "struct{Value int64; Next unsafe.Pointer; Kids []struct{}; Index map[string]unsafe.Pointer}"},
		{reflect.TypeFor[map[string]*listNode](), "map[string]*struct{Value int64; Next unsafe.Pointer; Kids []struct{}; Index map[string]unsafe.Pointer}"},
	} {
		if got := TypeString(tc.t); got != tc.want {
			t.Errorf("TypeString(%v)\n got %s\nwant %s", tc.t, got, tc.want)
		}
	}
}

// TestTypeStringStruct checks a struct with every kind of field at once,
// including an embedded one, an unexported one and a tagged one.
func TestTypeStringStruct(t *testing.T) {
	want := "struct{ID [16]byte; User string; TTL int64; tags []string; point struct{X int32; Y int32}; " +
		"Extra any; Err any; Meta *struct{X int32; Y int32}}"
	if got := TypeString(reflect.TypeFor[session]()); got != want {
		t.Errorf("TypeString(session)\n got %s\nwant %s", got, want)
	}
}
