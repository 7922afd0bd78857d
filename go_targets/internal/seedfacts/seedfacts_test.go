package seedfacts

import (
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"runtime"
	"strings"
	"testing"
)

// typeCheck type-checks one Go source file the way the compiler's front end
// does and returns its type errors.
func typeCheck(t *testing.T, src string) []types.Error {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "claim.go", src, 0)
	if err != nil {
		t.Fatalf("the snippet does not parse: %v", err)
	}
	var errs []types.Error
	conf := types.Config{Importer: importer.Default(), Error: func(err error) {
		var te types.Error
		if errors.As(err, &te) {
			errs = append(errs, te)
		}
	}}
	_, _ = conf.Check("claim", fset, []*ast.File{f}, nil)
	return errs
}

func wantTypeError(t *testing.T, src, fragment string) {
	t.Helper()
	errs := typeCheck(t, src)
	for _, e := range errs {
		if strings.Contains(e.Msg, fragment) {
			return
		}
	}
	t.Fatalf("want a compile error containing %q, got %v", fragment, errs)
}

// §3.1 says an array literal indexed out of range compiles and panics at run
// time. In Go a constant index out of range does not compile.
func TestConstantArrayIndexOutOfRangeDoesNotCompile(t *testing.T) {
	wantTypeError(t, `package claim
func f() int {
	a := [3]int{1, 2, 3}
	return a[5]
}`, "out of bounds")
	wantTypeError(t, `package claim
var a = [3]int{5: 1}`, "out of bounds")
}

// ... while an index only known at run time panics with a runtime error that
// a deferred recover can see (not a fatal error like concurrent map writes).
func TestVariableArrayIndexOutOfRangePanics(t *testing.T) {
	a := [3]int{1, 2, 3}
	i := len(a) + 2
	defer func() {
		r := recover()
		var re runtime.Error
		if err, ok := r.(error); !ok || !errors.As(err, &re) || !strings.Contains(re.Error(), "index out of range [5] with length 3") {
			t.Fatalf("want a runtime.Error for index 5, got %v", r)
		}
	}()
	_ = a[i]
	t.Fatal("indexing past the end did not panic")
}

// §3.2 says array parameters decay to pointers. Go arrays are values: the
// callee gets a copy, and the caller's array is unchanged.
func TestArrayParametersAreCopies(t *testing.T) {
	var a [4096]int64
	set := func(b [4096]int64) [4096]int64 {
		b[0] = 42
		return b
	}
	b := set(a)
	if a[0] != 0 || b[0] != 42 {
		t.Fatalf("the caller's array changed (a[0]=%d) or the copy did not (b[0]=%d)", a[0], b[0])
	}
}

// §4.2 says arrays of non-comparable elements fail as map keys at run time.
// Go refuses them at compile time (mapquake's type parser does the same).
func TestNonComparableArrayKeysDoNotCompile(t *testing.T) {
	wantTypeError(t, `package claim
var m map[[2][]byte]int`, "invalid map key type")
	wantTypeError(t, `package claim
var m map[[1]map[string]int]bool`, "invalid map key type")
	if errs := typeCheck(t, `package claim
var m map[[2]string]int`); len(errs) != 0 {
		t.Fatalf("an array of comparable elements is a valid key, got %v", errs)
	}
}
