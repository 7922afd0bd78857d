"""Exact grudges for every partition shape (as Jepsen's nemesis_test)."""

from __future__ import annotations

import pytest

from chaos import topology as t

N5 = ["n1", "n2", "n3", "n4", "n5"]


def fs(*xs: str) -> frozenset[str]:
    return frozenset(xs)


def test_bisect_puts_the_smaller_half_first() -> None:
    assert t.bisect(N5) == (["n1", "n2"], ["n3", "n4", "n5"])
    assert t.bisect(["a", "b"]) == (["a"], ["b"])


def test_complete_grudge() -> None:
    assert t.complete_grudge([["a", "b"], ["c"]]) == {"a": fs("c"), "b": fs("c"), "c": fs("a", "b")}
    assert t.complete_grudge([["a", "b"]]) == {}


def test_halves() -> None:
    assert t.halves(N5) == {
        "n1": fs("n3", "n4", "n5"),
        "n2": fs("n3", "n4", "n5"),
        "n3": fs("n1", "n2"),
        "n4": fs("n1", "n2"),
        "n5": fs("n1", "n2"),
    }
    assert t.halves(["a", "b", "c"]) == {"a": fs("b", "c"), "b": fs("a"), "c": fs("a")}


def test_isolate_one() -> None:
    assert t.isolate_one(["a", "b", "c"]) == {"a": fs("b", "c"), "b": fs("a"), "c": fs("a")}


def test_one_way_blocks_first_half_to_second_only() -> None:
    assert t.one_way(["a", "b"]) == {"b": fs("a")}
    assert t.one_way(N5) == {"n3": fs("n1", "n2"), "n4": fs("n1", "n2"), "n5": fs("n1", "n2")}
    assert t.cut_pairs(t.one_way(["a", "b", "c"])) == [("a", "b"), ("a", "c")]


def test_bridge_keeps_the_middle_node_connected() -> None:
    assert t.bridge(N5) == {"n1": fs("n4", "n5"), "n2": fs("n4", "n5"), "n4": fs("n1", "n2"), "n5": fs("n1", "n2")}
    assert t.bridge(["a", "b", "c"]) == {"a": fs("c"), "c": fs("a")}


def test_majorities_ring_five() -> None:
    assert t.majorities_ring(N5) == {
        "n1": fs("n3", "n4"),
        "n2": fs("n4", "n5"),
        "n3": fs("n5", "n1"),
        "n4": fs("n1", "n2"),
        "n5": fs("n2", "n3"),
    }


def test_majorities_ring_properties() -> None:
    for n in range(3, 9):
        nodes = [f"n{i}" for i in range(n)]
        grudge = t.majorities_ring(nodes)
        heard = [frozenset(nodes) - grudge[x] for x in nodes]
        assert all(len(h) == n // 2 + 1 for h in heard)  # each hears a majority (itself included)
        assert len(set(heard)) == n  # no two hear the same majority


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="needs at least 3"):
        t.shape_grudge("bridge", ["a", "b"])
    with pytest.raises(ValueError, match="not one of"):
        t.shape_grudge("halfs", ["a", "b"])


def test_components_of_halves() -> None:
    assert t.components_of(t.halves(N5), N5) == [["n1", "n2"], ["n3", "n4", "n5"]]
    assert t.components_of(t.bridge(N5), N5) == [N5]
