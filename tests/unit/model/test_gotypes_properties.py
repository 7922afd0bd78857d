"""Property tests: any generated type round-trips through the parser with a sane layout."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.model.gotypes import parse

BASIC = ["bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex64", "complex128",
         "string", "uintptr", "any", "byte", "rune"]  # fmt: skip


def _types() -> st.SearchStrategy[str]:
    leaf = st.sampled_from(BASIC)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        field_names = st.sampled_from(["A", "B", "C", "_", "x"])
        fields = st.lists(st.tuples(field_names, inner), min_size=0, max_size=4).map(
            lambda fs: (
                "struct{" + "; ".join(f"{n}{i} {t}" if n != "_" else f"_ {t}" for i, (n, t) in enumerate(fs)) + "}"
            )
        )
        return st.one_of(
            inner.map(lambda t: f"*{t}"),
            inner.map(lambda t: f"[]{t}"),
            st.tuples(st.integers(0, 5), inner).map(lambda p: f"[{p[0]}]{p[1]}"),
            fields,
            inner.map(lambda t: f"any({t})" if not t.startswith("any") else t),
        )

    return st.recursive(leaf, extend, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(_types())
def test_layout_invariants(text: str) -> None:
    t = parse(text)
    assert t.size % t.align == 0
    assert t.align in (1, 2, 4, 8)
    assert parse(t.text).size == t.size  # the canonical text parses to the same layout
    if t.kind == "struct":
        end = 0
        for f in t.fields:
            assert f.offset % f.type.align == 0
            assert f.offset >= end
            end = f.offset + f.type.size
        assert t.has_pointers == any(f.type.has_pointers for f in t.fields)
        assert t.size >= end
