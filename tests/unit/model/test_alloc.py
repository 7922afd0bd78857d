"""Allocator rounding (research §1.4): classes, malloc header, large pages, tiny blocks."""

from __future__ import annotations

import itertools

import pytest

from orchestrator.model.alloc import SIZE_CLASSES, alloc, slice_growth_caps, tiny_blocks, usable


def test_size_class_table() -> None:
    assert len(SIZE_CLASSES) == 67
    assert SIZE_CLASSES[:5] == (8, 16, 24, 32, 48)
    assert SIZE_CLASSES[-1] == 32768


@pytest.mark.parametrize(
    ("size", "ptr", "charged"),
    [
        (0, False, 0),
        (144, False, 144),
        (272, False, 288),
        (784, True, 896),  # 2 groups of map[string][32]byte: +8 header → 792 → 896
        (784, False, 896),
        (512, True, 512),  # the header starts above 512
        (513, True, 576),
        (1024, True, 1152),  # 128-entry directory
        (16384, True, 18432),  # 2048-entry directory
        (17408, False, 18432),
        (32760, True, 32768),
        (32761, False, 32768),  # large: whole pages, no header
        (50176, True, 57344),  # 128 groups × 392 → 7 pages
        (2506752, False, 2506752),
    ],
)
def test_alloc(size: int, ptr: bool, charged: int) -> None:
    assert alloc(size, ptr) == charged


def test_usable_is_roundupsize() -> None:
    assert usable(17 * 144, False) // 144 == 18  # classic B=4 int64/int64: 18 buckets
    assert usable(272 * 144, False) // 144 == 284  # B=8: 5 pages


@pytest.mark.parametrize(
    ("sizes", "entries", "blocks"),
    [
        ([8], 1, 1),
        ([8], 2, 1),
        ([8], 3, 2),
        ([8], 1000, 500),
        ([4], 1000, 250),
        ([3], 5, 1),  # odd sizes pack at byte alignment: 5 per block
        ([3], 6, 2),
        ([12], 10, 10),
        ([8, 8], 1000, 1000),
        ([4, 8], 10, 10),
        ([2], 10**9, 125_000_000),
    ],
)
def test_tiny_blocks(sizes: list[int], entries: int, blocks: int) -> None:
    assert tiny_blocks(sizes, entries) == 16 * blocks


def test_slice_growth() -> None:
    assert slice_growth_caps(1, 8, True) == [1]
    assert slice_growth_caps(5, 8, True) == [1, 2, 4, 8]
    caps = slice_growth_caps(3000, 8, True)
    assert caps[-1] >= 3000
    assert all(b > a for a, b in itertools.pairwise(caps))
