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


# Standard-library types: size, align, pointer bytes > 0, as unsafe.Sizeof/Alignof and the type
# descriptor's PtrBytes report them on go1.23.5, go1.26.8 and go1.27.3 (docs/model.md).
STD = [
    ("sync.Mutex", 8, 4, False),
    ("sync.RWMutex", 24, 4, False),
    ("sync.Once", 12, 4, False),
    ("sync.WaitGroup", 16, 8, False),
    ("atomic.Bool", 4, 4, False),
    ("atomic.Int32", 4, 4, False),
    ("atomic.Int64", 8, 8, False),
    ("atomic.Uint32", 4, 4, False),
    ("atomic.Uint64", 8, 8, False),
    ("atomic.Uintptr", 8, 8, False),
    ("atomic.Value", 16, 8, True),
    ("atomic.Pointer[int64]", 8, 8, True),
    ("atomic.Pointer[struct{Value [32]byte}]", 8, 8, True),
    ("time.Time", 24, 8, True),
    ("time.Duration", 8, 8, False),
]


@pytest.mark.parametrize("go", [(1, 23), (1, 24), (1, 26), (1, 27)], ids=lambda v: f"go{v[0]}.{v[1]}")
@pytest.mark.parametrize(("text", "size", "align", "ptr"), STD, ids=[r[0] for r in STD])
def test_std_types_layout_per_go_version(text: str, size: int, align: int, ptr: bool, go: tuple[int, int]) -> None:
    t = parse(text, go)
    assert (t.size, t.align, t.has_pointers, t.comparable) == (size, align, ptr, True)
    assert t.text == text


def test_std_layouts_follow_the_sources_of_each_version() -> None:
    # 1.24 wrapped sync.Mutex around internal/sync's and gave it a noCopy: other fields, same size.
    assert [f.name for f in parse("sync.Mutex", (1, 23)).fields] == ["state", "sema"]
    assert [f.name for f in parse("sync.Mutex", (1, 26)).fields] == ["_", "mu"]
    assert [f.name for f in parse("sync.Once", (1, 23)).fields] == ["done", "m"]
    assert [f.name for f in parse("sync.Once", (1, 26)).fields] == ["_", "done", "m"]


def test_std_types_in_structs_lay_out_like_gc() -> None:
    t = parse("struct{Mu sync.Mutex; T time.Time; N atomic.Int32; D time.Duration; B atomic.Bool}")
    assert [(f.name, f.offset) for f in t.fields] == [("Mu", 0), ("T", 8), ("N", 32), ("D", 40), ("B", 48)]
    assert (t.size, t.align, t.has_pointers) == (56, 8, True)
    assert parse("struct{Mu sync.Mutex; N atomic.Int64}").has_pointers is False


def test_embedded_std_types_are_named_after_their_type() -> None:
    t = parse("struct{sync.RWMutex; atomic.Pointer[int64]; *time.Time; N int}")
    assert [(f.name, f.embedded) for f in t.fields] == [
        ("RWMutex", True),
        ("Pointer", True),
        ("Time", True),
        ("N", False),
    ]
    with pytest.raises(UsageError, match="Mutex redeclared"):
        parse("struct{sync.Mutex; Mutex int}")


def test_std_key_cardinality() -> None:
    # Only a lock's zero value can be built; a bool atomic holds two values.
    assert parse("sync.Mutex").cardinality() == 1
    assert parse("sync.WaitGroup").cardinality() == 1
    assert parse("atomic.Bool").cardinality() == 2
    assert parse("atomic.Uint32").cardinality() == 1 << 32
    assert parse("time.Time").cardinality() == 1 << 62
    assert container_of("map[time.Time]atomic.Uint64").key.text == "time.Time"


STD_REFUSED = [
    ("map[string]sync.Cond", "undefined: sync.Cond", 12),
    ("map[string]atomic.Pointer", "atomic.Pointer needs its type argument", 12),
    ("map[string]atomic.Pointer[int", "expected ']'", None),
    ("map[string]atomic.Pointer[sync.Map[int]int]", "only supported as the whole TYPE", 27),
    ("map[string]time.Location", "undefined: time.Location", 12),
]


@pytest.mark.parametrize(("text", "part", "column"), STD_REFUSED, ids=[r[0] for r in STD_REFUSED])
def test_std_types_refused_with_position_and_hint(text: str, part: str, column: int | None) -> None:
    with pytest.raises(UsageError) as info:
        container_of(text)
    assert part in info.value.message
    assert info.value.hint
    if column is not None:
        assert f"column {column}:" in info.value.message
