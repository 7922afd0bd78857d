"""Swiss tables (Go ≥ 1.24), the research §1.5/1.6 values (measured on go1.24.4 and go1.26.11)."""

from __future__ import annotations

import pytest

from orchestrator.model import swiss
from orchestrator.model.gotypes import parse

I64 = parse("int64")


@pytest.mark.parametrize(
    ("k", "v", "group", "slot"),
    [
        ("int64", "int64", 136, 16),
        ("string", "[32]byte", 392, 48),
        ("string", "any", 264, 32),
        ("any", "*int", 200, 24),
        ("int64", "int8", 136, 16),
        ("string", "struct{}", 200, 24),  # trailing zero-size elem pads the slot
        ("struct{}", "struct{}", 16, 0),
        ("string", "[200]byte", 200, 24),  # >128 B: stored through a pointer
    ],
)
def test_group_layout(k: str, v: str, group: int, slot: int) -> None:
    lay = swiss.layout(parse(k), parse(v))
    assert (lay.group_size, lay.slot_size) == (group, slot)


INT64_TABLE = [
    # N, live, cumulative (map[int64]int64, research §1.6)
    (0, 48, 48),
    (1, 192, 192),
    (8, 192, 192),
    (9, 376, 520),
    (14, 376, 520),
    (15, 664, 1128),
    (28, 664, None),
    (29, 1240, None),
    (57, 2392, 4648),
    (113, 4952, 9544),
    (225, 9560, 19048),
    (449, 18520, 37512),
    (896, 18520, 37512),
    (897, 36992, 74456),
    (1000, 36992, 74456),
]


@pytest.mark.parametrize(("n", "live", "cum"), INT64_TABLE)
def test_int64_map_exact(n: int, live: int, cum: int | None) -> None:
    est = swiss.predict(I64, I64, n, high_water=n, hint=None)
    assert est.live == live
    if cum is not None:
        assert est.cumulative == cum


@pytest.mark.parametrize(
    ("n", "live"),
    [(1, 464), (8, 464), (9, 984), (15, 1880), (29, 3288), (57, 6616), (113, 13656), (225, 27352),
     (449, 57432), (896, 57432), (1000, 114816)],
)  # fmt: skip
def test_string_array_map_exact(n: int, live: int) -> None:
    assert swiss.predict(parse("string"), parse("[32]byte"), n, high_water=n, hint=None).live == live


def test_expected_table_counts() -> None:
    def tables(n: int) -> float:
        return float(swiss.structure(I64, I64, n, None).details["tables"])

    assert tables(1000) == pytest.approx(2.0)
    assert tables(100_000) == pytest.approx(128.0033, abs=1e-3)
    assert tables(1_000_000) == pytest.approx(2043.14, abs=0.01)


def test_random_cases_bracket_the_observed_values() -> None:
    est = swiss.predict(I64, I64, 1_000_000, high_water=0, hint=None)
    for t in (2043, 2044, 2045, 2047):  # observed table counts
        observed = 48 + 18432 + t * 18464
        assert est.low <= observed <= est.high
        assert abs(observed - est.live) / observed < 0.005
    est = swiss.predict(parse("string"), parse("[32]byte"), 1_000_000, high_water=0, hint=None)
    for observed in (117_237_648, 117_467_152):
        assert est.low <= observed <= est.high
    est = swiss.predict(I64, I64, 100_000, high_water=0, hint=None)
    assert est.low <= 2_364_592 <= est.high
    assert abs(est.live - 2_364_592) <= 100


@pytest.mark.parametrize(("hint", "live"), [(100, 2392), (1000, 36992), (100_000, 2_364_592), (1_000_000, 37_832_752)])
def test_make_hint(hint: int, live: int) -> None:
    # 1e5: expected value counts the 0.3 % chance of a 129th table (+64 B)
    assert swiss.predict(I64, I64, hint, high_water=hint, hint=hint).live == pytest.approx(live, abs=100)


def test_high_water_mark_keeps_the_structure() -> None:
    full = swiss.predict(I64, I64, 100_000, high_water=100_000, hint=None)
    emptied = swiss.predict(I64, I64, 0, high_water=100_000, hint=None)
    assert emptied.live == full.live  # research: still 2 364 592 after deleting all


def test_indirect_values_cost_one_object_each() -> None:
    small = swiss.predict(parse("int64"), parse("[200]byte"), 8, high_water=8, hint=None)
    assert small.breakdown["indirect"] == 8 * 208
