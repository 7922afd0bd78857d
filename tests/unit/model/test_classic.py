"""Classic hmap (Go ≤ 1.23), research §2 values measured on go1.23.5."""

from __future__ import annotations

import pytest

from orchestrator.model import classic
from orchestrator.model.gotypes import parse

I64 = parse("int64")


@pytest.mark.parametrize(
    ("k", "v", "size", "ptr"),
    [("int64", "int64", 144, False), ("string", "[32]byte", 400, True), ("string", "any", 272, True),
     ("any", "*int", 208, True)],
)  # fmt: skip
def test_bucket_layout(k: str, v: str, size: int, ptr: bool) -> None:
    lay = classic.layout(parse(k), parse(v))
    assert (lay.bucket_size, lay.bucket_has_pointers) == (size, ptr)


def test_growth_points() -> None:
    assert [classic.grow_trigger(b) for b in range(1, 10)] == [9, 14, 27, 53, 105, 209, 417, 833, 1665]
    assert classic.b_for(8) == 0
    assert classic.b_for(9) == 1
    assert classic.b_for(1000) == 8
    assert classic.b_for(1_000_000) == 18


@pytest.mark.parametrize(
    ("k", "v", "n", "live"),
    [
        ("int64", "int64", 1, 192),
        ("int64", "int64", 8, 192),
        ("int64", "int64", 1_000_000, 40_157_280),
        ("string", "[32]byte", 1, 464),
        ("string", "[32]byte", 1000, 114_760),
        ("string", "[32]byte", 1_000_000, 111_411_272),
    ],
)
def test_exact_where_deterministic(k: str, v: str, n: int, live: int) -> None:
    assert classic.predict(parse(k), parse(v), n, high_water=n, hint=None).live == pytest.approx(live, abs=16)


@pytest.mark.parametrize(
    ("n", "measured"), [(9, 336), (14, 624), (26, 824), (27, 1776), (53, 4240), (1000, 41_088), (100_000, 2_772_000)]
)
def test_random_cases_in_range(n: int, measured: int) -> None:
    est = classic.predict(I64, I64, n, high_water=n, hint=None)
    assert est.low <= measured <= est.high


def test_old_buckets_stay_during_evacuation() -> None:
    est = classic.predict(I64, I64, 27, high_water=27, hint=None)
    assert 576 <= est.breakdown["oldbuckets"] <= 576 + 144 + 32  # B=2 array + its expected overflow
    est = classic.predict(I64, I64, 1000, high_water=1000, hint=None)
    assert est.breakdown["oldbuckets"] == 0


def test_hint_preallocates() -> None:
    est = classic.predict(I64, I64, 0, high_water=0, hint=1000)
    assert est.breakdown["buckets"] == 40_960
    assert est.breakdown["oldbuckets"] == 0
