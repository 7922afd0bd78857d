package warmup

import (
	"runtime"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// After BuildLazyTables, the first Huffman-coded header a client sends leaves
// no table behind in the heap (built lazily, the tree is about 38 KiB).
func TestBuildLazyTablesLeavesNothingForTheFirstHuffmanHeader(t *testing.T) {
	BuildLazyTables()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	coded := hpack.AppendHuffmanString(nil, "grpc-go/1.85.0 application/grpc")
	decoded, err := hpack.HuffmanDecodeToString(coded)
	if err != nil || decoded != "grpc-go/1.85.0 application/grpc" {
		t.Fatalf("decode: %q, %v", decoded, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(coded)
	// The tree is ~38 KiB; the test binary's own allocations (more under -race,
	// with other packages' tests running beside it) stay well under 16 KiB.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<10 {
		t.Fatalf("decoding a Huffman header kept %d B live; the lazy table was not built up front", grew)
	}
}
