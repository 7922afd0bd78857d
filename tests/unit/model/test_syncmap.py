"""sync.Map: hash-trie (Go ≥ 1.24) and read/dirty (Go ≤ 1.23), research §4."""

from __future__ import annotations

import pytest

from orchestrator.model import syncmap
from orchestrator.model.gotypes import parse

ANY = parse("any")


@pytest.mark.parametrize(("n", "nodes"), [(1, 1.0), (1000, 359.7), (100_000, 38_705), (1_000_000, 359_744)])
def test_expected_trie_nodes(n: int, nodes: float) -> None:
    assert syncmap.indirect_nodes(n)[0] == pytest.approx(nodes, rel=2e-4)


def test_trie_live() -> None:
    assert syncmap.predict_trie(ANY, ANY, 1, high_water=1).live == 256
    assert syncmap.predict_trie(ANY, ANY, 1000, high_water=1000).live == pytest.approx(105_606, abs=1)
    est = syncmap.predict_trie(ANY, ANY, 1_000_000, high_water=0)
    assert est.low <= 105_520_000 and est.high >= 105_620_000  # measured 105.52–105.62 MB


def test_trie_boxes_int_keys_and_values() -> None:
    i64 = parse("int64")
    plain = syncmap.predict_trie(ANY, ANY, 1_000_000, high_water=0).live
    boxed = syncmap.predict_trie(i64, i64, 1_000_000, high_water=0).live
    assert boxed - plain == 16_000_000  # two 8-B tiny objects per entry


@pytest.mark.parametrize(("n", "live"), [(1, 328), (1000, 81_464), (1_000_000, 81_933_944)])
def test_legacy_fill(n: int, live: int) -> None:
    assert syncmap.predict_legacy(ANY, ANY, n, high_water=n).live == pytest.approx(live, abs=16)


def test_legacy_double_copy_peak() -> None:
    est = syncmap.predict_legacy(ANY, ANY, 1_000_000, high_water=0)
    assert est.peak is not None
    # measured 139.87 MB right after the first new-key Store following a promotion
    assert est.peak == pytest.approx(139_867_864, rel=0.001)
