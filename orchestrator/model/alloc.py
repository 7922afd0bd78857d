"""What one allocation charges to the Go heap (linux/amd64, Go 1.22 … 1.27).

The size-class table, the 8-byte malloc header of pointerful objects over 512 B, the
page-granular large-object path and the 16-byte tiny blocks are the same in every Go
release the model covers (research/go-map-memory.md §1.4).
"""

from __future__ import annotations

import bisect

SIZE_CLASSES: tuple[int, ...] = (
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
    2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472,
    9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264,
    28672, 32768,
)  # fmt: skip
MAX_SMALL_SIZE = 32768
MALLOC_HEADER = 8
#: Pointerful objects up to this size keep their pointer bitmap in the span (no header).
MIN_SIZE_FOR_MALLOC_HEADER = 512
PAGE_SIZE = 8192
TINY_BLOCK = 16


def size_class(size: int) -> int:
    """The smallest size class holding ``size`` bytes (size ≤ 32768)."""
    return SIZE_CLASSES[bisect.bisect_left(SIZE_CLASSES, size)]


def alloc(size: int, has_pointers: bool) -> int:
    """Heap bytes charged by one ``mallocgc(size, typ)`` (tiny objects: a whole 16-B block)."""
    if size <= 0:
        return 0  # &zerobase
    if size <= MAX_SMALL_SIZE - MALLOC_HEADER:
        if has_pointers and size > MIN_SIZE_FOR_MALLOC_HEADER:
            size += MALLOC_HEADER
        return size_class(size)
    return -(-size // PAGE_SIZE) * PAGE_SIZE


def usable(size: int, has_pointers: bool) -> int:
    """Go's ``roundupsize``: the bytes a request of ``size`` can really use (minus the header)."""
    if size <= MAX_SMALL_SIZE - MALLOC_HEADER:
        header = MALLOC_HEADER if has_pointers and size > MIN_SIZE_FOR_MALLOC_HEADER else 0
        return size_class(size + header) - header
    return -(-size // PAGE_SIZE) * PAGE_SIZE


def is_tiny(size: int, has_pointers: bool) -> bool:
    return 0 < size < TINY_BLOCK and not has_pointers


def _tiny_align(size: int) -> int:
    if size % 8 == 0:
        return 8
    if size % 4 == 0:
        return 4
    if size % 2 == 0:
        return 2
    return 1


def tiny_blocks(sizes_per_entry: list[int], entries: int) -> int:
    """Heap bytes of the 16-B tiny blocks used by ``entries`` repetitions of a sequence of
    tiny allocations (each < 16 B, noscan), starting from a fresh block.

    Simulates the mcache's tiny allocator (``mallocgcTiny``): align the offset by the size,
    reuse the current block if it fits, otherwise take a new block and keep whichever of
    the old and new block has more room left. The state is the offset (0…16), so the
    sequence is periodic and large ``entries`` are answered in O(1).
    """
    if entries <= 0 or not sizes_per_entry:
        return 0
    offset: int | None = None  # None: no current tiny block
    blocks = 0
    seen: dict[int | None, tuple[int, int]] = {}
    done = 0
    while done < entries:
        if offset in seen:
            start, start_blocks = seen[offset]
            period = done - start
            per_period = blocks - start_blocks
            cycles = (entries - done) // period
            done += cycles * period
            blocks += cycles * per_period
            seen = {}
            if done >= entries:
                break
        else:
            seen[offset] = (done, blocks)
        for size in sizes_per_entry:
            if offset is not None:
                off = -(-offset // _tiny_align(size)) * _tiny_align(size)
                if off + size <= TINY_BLOCK:
                    offset = off + size
                    continue
            blocks += 1
            if offset is None or size < offset:
                offset = size
        done += 1
    return blocks * TINY_BLOCK


def slice_growth_caps(final_len: int, elem_size: int, has_pointers: bool) -> list[int]:
    """Capacities an ``append``-grown slice passes through to reach ``final_len`` elements
    (one append at a time, starting from nil), as ``growslice`` rounds them."""
    caps: list[int] = []
    cap = 0
    while cap < final_len:
        length = cap + 1
        if cap < 256:
            newcap = max(cap * 2, length)
        else:
            newcap = cap
            while newcap < length:
                newcap += (newcap + 3 * 256) >> 2
        cap = usable(newcap * elem_size, has_pointers) // elem_size
        caps.append(cap)
    return caps
