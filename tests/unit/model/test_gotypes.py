"""Go type parser: amd64 layout, pointerness, and refusals the way the compiler refuses."""

from __future__ import annotations

import pytest

from orchestrator.core.errors import UsageError
from orchestrator.model.gotypes import container_of, parse

LAYOUT = [
    # type, size, align, has pointers, comparable
    ("bool", 1, 1, False, True),
    ("int8", 1, 1, False, True),
    ("uint16", 2, 2, False, True),
    ("rune", 4, 4, False, True),
    ("int", 8, 8, False, True),
    ("uintptr", 8, 8, False, True),
    ("float32", 4, 4, False, True),
    ("complex64", 8, 4, False, True),
    ("complex128", 16, 8, False, True),
    ("string", 16, 8, True, True),
    ("[]byte", 24, 8, True, False),
    ("*int64", 8, 8, True, True),
    ("unsafe.Pointer", 8, 8, True, True),
    ("any", 16, 8, True, True),
    ("any(int64)", 16, 8, True, True),
    ("error", 16, 8, True, True),
    ("[32]byte", 32, 1, False, True),
    ("[0]int64", 0, 8, False, True),
    ("[4]string", 64, 8, True, True),
    ("[2][]int", 48, 8, True, False),
    ("map[string]int", 8, 8, True, False),
    ("chan int", 8, 8, True, True),
    ("func(int) error", 8, 8, True, False),
    ("struct{}", 0, 1, False, True),
    ("struct{Value int64; Version uint64}", 16, 8, False, True),
    ("struct{Value [32]byte; Version uint64}", 40, 8, False, True),
    ("struct{a bool; b int64; c bool}", 24, 8, False, True),
    ("struct{a int32; b bool}", 8, 4, False, True),
    ("struct{a, b int16; c int8}", 6, 2, False, True),
    ("struct{a int64; z struct{}}", 16, 8, False, True),  # trailing zero-size field: +1 pad
    ("struct{a int32; z [0]int64}", 16, 8, False, True),
    ("struct{s string; n int}", 24, 8, True, True),
    ("struct{b []byte}", 24, 8, True, False),
    ("struct{int64; *string}", 16, 8, True, True),
    ('struct{A int64 `json:"a"`}', 8, 8, False, True),
    ("struct{_ int32; _ int32}", 8, 4, False, True),
    ("(int64)", 8, 8, False, True),
]


@pytest.mark.parametrize(("text", "size", "align", "ptr", "comparable"), LAYOUT, ids=[r[0] for r in LAYOUT])
def test_layout(text: str, size: int, align: int, ptr: bool, comparable: bool) -> None:
    t = parse(text)
    assert (t.size, t.align, t.has_pointers, t.comparable) == (size, align, ptr, comparable)


def test_struct_field_offsets() -> None:
    t = parse("struct{a bool; b int64; c bool}")
    assert [(f.name, f.offset) for f in t.fields] == [("a", 0), ("b", 8), ("c", 16)]


@pytest.mark.parametrize(
    ("text", "kind", "shards"),
    [
        ("map[string]any(int64)", "map", 1),
        ("map[string]any(struct{Value [32]byte; Version uint64})", "map", 1),
        ("sync.Map[string][32]byte", "syncmap", 1),
        ("map[string]struct{Value int64; Version uint64}", "map", 1),
        ("[32]map[string][]byte", "map", 32),
        ("map[any]*struct{next *int}", "map", 1),
        ("map[[4]int32]struct{}", "map", 1),
        ("  map[ string ] [ 32 ]byte ", "map", 1),
    ],
)
def test_containers_accepted(text: str, kind: str, shards: int) -> None:
    c = container_of(text)
    assert (c.kind, c.shards) == (kind, shards)


REFUSED = [
    # type, message part, caret column (1-based) or None
    ("map[[]byte]int", "[]byte is not comparable", 5),
    ("map[struct{a []int}]int", "[]int is not comparable", 5),
    ("map[[2]map[int]int]bool", "map[int]int is not comparable", 5),
    ("map[func()]int", "not comparable", 5),
    ("map[any([]byte)]int", "hash of unhashable type []byte", 5),
    ("sync.Map[[]byte]int", "not comparable", 10),
    ("map[string]Foo", "undefined: Foo", 12),
    ("map[string]struct{Value int64, Version uint64}", "expected ';' or '}'", 30),
    ("map[string]struct{a int; a string}", "a redeclared", 26),
    ("map[string]int extra", "after the type", 16),
    ("map[string]", "end of type", None),
    ("map[string", "expected ']'", None),
    ("[x]int", "not an integer constant", 2),
    ("[-1]int", "invalid array length", 2),
    ("map[string]any(any)", "concrete dynamic type", 16),
    ("map[string]sync.Map[int]int", "only supported as the whole TYPE", 12),
    ("sync.Map", "needs its key and value types", 1),
    ("int64", "not a container", None),
    ("[0]map[string]int", "at least one shard", None),
    ("", "empty Go type", None),
    ("map[string]interface{ String() string }", "only the empty interface", None),
]


@pytest.mark.parametrize(("text", "part", "column"), REFUSED, ids=[r[0] or "empty" for r in REFUSED])
def test_refused_with_position_and_hint(text: str, part: str, column: int | None) -> None:
    with pytest.raises(UsageError) as info:
        container_of(text)
    err = info.value
    assert part in err.message
    assert err.hint
    assert err.exit_code == 2
    if column is not None:
        assert f"column {column}:" in err.message
        caret_line = err.message.splitlines()[-1]
        assert caret_line.index("^") - 4 == column - 1


def test_cardinality_of_small_keys() -> None:
    assert parse("bool").cardinality() == 2
    assert parse("uint8").cardinality() == 256
    assert parse("struct{a, b uint8}").cardinality() == 65536
    assert parse("[2]bool").cardinality() == 4
    assert parse("struct{}").cardinality() == 1
