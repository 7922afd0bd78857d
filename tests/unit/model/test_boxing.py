"""Interface boxing per conversion path (research §5)."""

from __future__ import annotations

import pytest

from orchestrator.model.boxing import box, slot_box
from orchestrator.model.gotypes import parse

CASES = [
    # dynamic type, runtime path, bytes requested, tiny
    ("*int64", "direct", 0, False),
    ("map[string]int", "direct", 0, False),
    ("struct{p *int}", "direct", 0, False),
    ("[1]*int", "direct", 0, False),
    ("struct{}", "zerobase", 0, False),
    ("bool", "staticuint64s", 0, False),
    ("uint8", "staticuint64s", 0, False),
    ("struct{b byte}", "staticuint64s", 0, False),
    ("int16", "convT16", 2, True),
    ("int32", "convT32", 4, True),
    ("float32", "convT32", 4, True),
    ("int64", "convT64", 8, True),
    ("float64", "convT64", 8, True),
    ("struct{a int64}", "convT64", 8, True),
    ("[2]int32", "convTnoptr", 8, True),  # align 4: not convT64
    ("string", "convTstring", 16, False),
    ("struct{s string}", "convTstring", 16, False),
    ("[]byte", "convTslice", 24, False),
    ("[3]byte", "convTnoptr", 3, True),
    ("struct{a, b int64}", "convTnoptr", 16, False),
    ("[32]byte", "convTnoptr", 32, False),
    ("struct{Value [32]byte; Version uint64}", "convTnoptr", 40, False),
    ("struct{s string; n int}", "convT", 24, False),
    ("[40]string", "convT", 640, False),
]


@pytest.mark.parametrize(("text", "path", "size", "tiny"), CASES, ids=[c[0] for c in CASES])
def test_box(text: str, path: str, size: int, tiny: bool) -> None:
    b = box(parse(text))
    assert (b.path, b.size, b.tiny) == (path, size, tiny)


def test_box_bytes() -> None:
    assert box(parse("string")).bytes == 16
    assert box(parse("struct{Value [32]byte; Version uint64}")).bytes == 48
    assert box(parse("[40]string")).bytes == 704  # 640 + 8 header → class 704


def test_only_any_of_t_slots_box() -> None:
    assert slot_box(parse("any")).size == 0
    assert slot_box(parse("int64")).size == 0
    assert slot_box(parse("any(int64)")).path == "convT64"
