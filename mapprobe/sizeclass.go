package mapprobe

import (
	"sort"
	"unsafe"
)

// The Go runtime's allocator facts that decide how many heap bytes an
// object of a given size takes, from the runtime's generated
// sizeclasses.go and malloc.go (identical in Go 1.23 and Go 1.26; the
// malloc header exists since Go 1.22, mapprobe's minimum).
const (
	// tinySize: an object without pointers smaller than this goes to the
	// tiny allocator, which packs several into one 16-byte block.
	tinySize = 16
	// maxSmallSize is the largest small object; bigger ones get whole pages.
	maxSmallSize = 32768
	// pageSize is the unit a large object is rounded up to.
	pageSize = 8192
	// mallocHeaderSize is the type header (Go 1.22+) the runtime prepends
	// to an object with pointers bigger than minSizeForMallocHeader
	// (ptrSize * bits per word: 512 B on 64-bit), inside its size class.
	mallocHeaderSize       = 8
	ptrSize                = unsafe.Sizeof(uintptr(0))
	minSizeForMallocHeader = ptrSize * 8 * ptrSize
)

// sizeClasses is bytes per object of each small size class, ascending.
var sizeClasses = [...]uint32{
	8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280,
	1408, 1536, 1792, 2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528,
	6784, 6912, 8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072,
	20480, 21760, 24576, 27264, 28672, 32768,
}

// heapBytes is what one heap object of size bytes costs: its size class,
// pages for a large object, or a whole 16-byte block for a tiny one. noscan says
// the object's type has no pointers. 0 for size 0 (such objects all share
// the runtime's zerobase).
//
// A tiny object is charged the whole 16-byte block. The tiny allocator packs
// several of them (string bytes, small []byte, boxed int64s, new(int32))
// into one block, and a block is freed only when all its objects are. In a
// service a map's entries are made among each request's garbage (parsed
// headers, short-lived strings), so a long-lived tiny object ends up holding
// its block alone: measured on examples/inventory, charging 10-byte keys
// and names their exact size left 15-17 B per entry unexplained, charging
// the block left 4-5 B. (Consecutive tiny objects made with no garbage in
// between do share blocks; that is a benchmark's pattern, not a service's.)
func heapBytes(size uintptr, noscan bool) uintptr {
	switch {
	case size == 0:
		return 0
	case noscan && size < tinySize:
		return tinySize
	case size > maxSmallSize-mallocHeaderSize:
		// Large objects get whole pages and never a malloc header.
		return (size + pageSize - 1) / pageSize * pageSize
	}
	if !noscan && size > minSizeForMallocHeader {
		size += mallocHeaderSize
	}
	i := sort.Search(len(sizeClasses), func(i int) bool { return uintptr(sizeClasses[i]) >= size })
	return uintptr(sizeClasses[i])
}
