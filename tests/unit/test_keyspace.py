"""Key spaces: exact streams, determinism, disjoint strides, distribution shape, and the expected counts."""

from __future__ import annotations

import math
import zlib
from collections import Counter
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.keyspace import (
    ChurnStream,
    KeySpec,
    KeyStream,
    expected_distinct_keys,
    expected_live_after_churn,
    key_bytes,
    key_name,
    stride_size,
    target_of,
    target_of_index,
)

# Kolmogorov-Smirnov critical value at alpha = 0.001 (for a discrete law the test is conservative).
KS_C = 1.949


def ks_distance(samples: list[int], cdf: list[float]) -> float:
    """sup |empirical CDF - cdf| over the key indices."""
    counts = Counter(samples)
    n = len(samples)
    running = 0
    worst = 0.0
    for i, f in enumerate(cdf):
        running += counts.get(i, 0)
        worst = max(worst, abs(running / n - f))
    return worst


def brute_force_distinct(spec: KeySpec, draws: list[int], replicas: int, replicated: bool) -> list[int]:
    """The obvious simulation: every worker writes its keys into a dict per target."""
    stores: list[set[str]] = [set() for _ in range(replicas)]
    streams = [KeyStream(spec, w, len(draws)) for w in range(len(draws))]
    # interleave the workers round-robin, as they would run concurrently
    for step in range(max(draws, default=0)):
        for w, stream in enumerate(streams):
            if step < draws[w]:
                key = key_name(stream.next_index())
                if replicated:
                    for s in stores:
                        s.add(key)
                else:
                    stores[zlib.crc32(key.encode()) % replicas].add(key)
    return [len(s) for s in stores]


# --- names and routing ------------------------------------------------------------------------


def test_key_names_match_mapload() -> None:
    assert [key_name(i) for i in (0, 17, 199_999)] == ["k000000000000000", "k000000000000017", "k000000000199999"]
    assert {len(key_name(i)) for i in (0, 10**14)} == {16}  # one size-class-16 allocation per key


@given(st.integers(min_value=0, max_value=10**17))
def test_key_bytes_are_the_utf8_key_name(index: int) -> None:
    assert key_bytes(index) == key_name(index).encode()


def test_routing_is_crc32_of_the_key_name() -> None:
    assert target_of("k0", 1) == 0
    assert target_of("k000000000000017", 3) == zlib.crc32(b"k000000000000017") % 3
    assert {target_of(key_name(i), 4) for i in range(100)} == {0, 1, 2, 3}
    assert [target_of_index(i, r) for i in range(100) for r in (1, 3)] == [
        target_of(key_name(i), r) for i in range(100) for r in (1, 3)
    ]


# --- sequential ------------------------------------------------------------------------------


def test_sequential_exact_values() -> None:
    spec = KeySpec(space=10)
    assert KeyStream(spec, 0, 3).take(6) == [0, 3, 6, 9, 0, 3]
    assert KeyStream(spec, 1, 3).take(5) == [1, 4, 7, 1, 4]
    assert KeyStream(spec, 2, 3).take(4) == [2, 5, 8, 2]
    assert KeyStream(spec, 0, 1).take(12) == [*range(10), 0, 1]


@given(
    space=st.integers(min_value=1, max_value=60),
    workers=st.integers(min_value=1, max_value=5),
    takes=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_sequential_take_equals_one_draw_at_a_time(space: int, workers: int, takes: list[int]) -> None:
    """take() has a fast path for sequential streams (ranges within a stride, wrapping at its end)."""
    spec = KeySpec(space=max(space, workers))
    batched, single = KeyStream(spec, workers - 1, workers), KeyStream(spec, workers - 1, workers)
    for n in takes:
        assert batched.take(n) == [single.next_index() for _ in range(n)]
        assert batched.drawn == single.drawn


def test_sequential_strides_are_disjoint_and_cover_the_space() -> None:
    spec = KeySpec(space=1000)
    workers = 7
    strides = [set(KeyStream(spec, w, workers).take(stride_size(1000, w, workers))) for w in range(workers)]
    assert sum(len(s) for s in strides) == 1000
    assert set().union(*strides) == set(range(1000))


def test_sequential_needs_a_key_per_worker() -> None:
    with pytest.raises(ValueError, match="smaller than the 4 workers"):
        KeyStream(KeySpec(space=3), 3, 4)


def test_sequential_closed_form() -> None:
    spec = KeySpec(space=1000)
    assert expected_distinct_keys(spec, [100, 200, 300]) == [600]
    # worker 0 owns 334 keys, 1 and 2 own 333: writing more only rewrites them
    assert expected_distinct_keys(spec, [10_000, 5, 333]) == [334 + 5 + 333]
    assert expected_distinct_keys(spec, [10_000, 10_000, 10_000], replicas=3, replicated=True) == [1000] * 3
    assert sum(expected_distinct_keys(spec, [10_000, 10_000, 10_000], replicas=3)) == 1000


# --- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["uniform", "zipf", "hot-set"])
def test_streams_are_deterministic_and_chunking_does_not_matter(distribution: str) -> None:
    spec = KeySpec(space=5000, distribution=distribution, seed=11)  # type: ignore[arg-type]
    one_by_one = KeyStream(spec, 1, 3)
    a = [one_by_one.next_index() for _ in range(1000)]
    chunked = KeyStream(spec, 1, 3)
    b = chunked.take(1) + chunked.take(499) + chunked.take(500)
    assert a == b
    assert one_by_one.drawn == chunked.drawn == 1000
    assert all(0 <= i < 5000 for i in a)
    # another worker, purpose or seed gives another stream
    assert KeyStream(spec, 2, 3).take(50) != a[:50]
    assert KeyStream(spec, 1, 3, "read").take(50) != a[:50]
    assert KeyStream(KeySpec(space=5000, distribution=distribution, seed=12), 1, 3).take(50) != a[:50]  # type: ignore[arg-type]


def test_streams_are_pinned() -> None:
    # A change here changes every run's expected counts (and trend history): it must be deliberate.
    def first(distribution: str, n: int) -> list[int]:
        spec = KeySpec(space=1000, distribution=distribution, seed=1, hot_fraction=0.1)  # type: ignore[arg-type]
        return KeyStream(spec, 0, 1).take(n)

    assert first("uniform", 5) == [218, 794, 390, 270, 354]
    assert first("zipf", 8) == [1, 126, 5, 2, 3, 44, 0, 22]
    assert first("hot-set", 8) == [79, 27, 67, 58, 94, 53, 59, 55]
    assert expected_distinct_keys(KeySpec(space=1000, distribution="zipf", seed=1), [300, 300], 3) == [67, 66, 73]


# --- distribution shape --------------------------------------------------------------------------


def test_uniform_matches_its_law() -> None:
    space, n = 1000, 50_000
    samples = KeyStream(KeySpec(space=space, distribution="uniform", seed=5), 0, 1).take(n)
    cdf = [(i + 1) / space for i in range(space)]
    assert ks_distance(samples, cdf) < KS_C / math.sqrt(n)


@pytest.mark.parametrize("s", [1.1, 1.5, 2.0])
def test_zipf_matches_the_bounded_zipf_law(s: float) -> None:
    space, n = 2000, 50_000
    samples = KeyStream(KeySpec(space=space, distribution="zipf", s=s, seed=9), 0, 1).take(n)
    weights = [(k + 1) ** -s for k in range(space)]
    total = sum(weights)
    cdf = [c / total for c in accumulate(weights)]
    assert ks_distance(samples, cdf) < KS_C / math.sqrt(n)
    # skew: the head is hot, each of the first ranks within 5 sigma of its binomial mean
    counts = Counter(samples)
    for k in range(5):
        p = weights[k] / total
        assert abs(counts[k] - n * p) < 5 * math.sqrt(n * p * (1 - p)), (k, counts[k], n * p)
    assert counts[0] > counts[1] > counts[2]


def test_zipf_is_more_skewed_than_uniform() -> None:
    n = 20_000
    zipf = set(KeyStream(KeySpec(space=100_000, distribution="zipf", s=1.2), 0, 1).take(n))
    uniform = set(KeyStream(KeySpec(space=100_000, distribution="uniform"), 0, 1).take(n))
    assert len(zipf) < len(uniform) / 2


def test_hot_set_sends_the_configured_share_to_the_hot_keys() -> None:
    spec = KeySpec(space=10_000, distribution="hot-set", hot_fraction=0.05, hot_ops_fraction=0.8, seed=3)
    assert spec.hot_keys == 500
    n = 40_000
    samples = KeyStream(spec, 0, 1).take(n)
    hot = sum(1 for i in samples if i < 500)
    p = 0.8
    assert abs(hot - n * p) < 5 * math.sqrt(n * p * (1 - p))
    assert all(0 <= i < 10_000 for i in samples)
    # within the hot set draws are uniform
    hot_samples = [i for i in samples if i < 500]
    assert ks_distance(hot_samples, [(i + 1) / 500 for i in range(500)]) < KS_C / math.sqrt(len(hot_samples))


def test_hot_set_all_hot() -> None:
    spec = KeySpec(space=10, distribution="hot-set", hot_fraction=1.0, hot_ops_fraction=0.0)
    assert set(KeyStream(spec, 0, 1).take(500)) == set(range(10))


# --- expected counts vs simulation ------------------------------------------------------------------

SPECS = st.builds(
    KeySpec,
    space=st.integers(min_value=8, max_value=400),
    distribution=st.sampled_from(["sequential", "uniform", "zipf", "hot-set"]),
    seed=st.integers(min_value=0, max_value=1000),
    s=st.floats(min_value=1.01, max_value=3.0),
    hot_fraction=st.floats(min_value=0.01, max_value=1.0),
    hot_ops_fraction=st.floats(min_value=0.0, max_value=1.0),
)


@settings(max_examples=150, deadline=None)
@given(
    spec=SPECS,
    draws=st.lists(st.integers(min_value=0, max_value=600), min_size=1, max_size=4),
    replicas=st.integers(min_value=1, max_value=4),
    replicated=st.booleans(),
)
def test_expected_distinct_keys_matches_a_simulation(
    spec: KeySpec, draws: list[int], replicas: int, replicated: bool
) -> None:
    if spec.distribution == "sequential" and spec.space < len(draws):
        return
    assert expected_distinct_keys(spec, draws, replicas, replicated) == brute_force_distinct(
        spec, draws, replicas, replicated
    )


def test_expected_distinct_keys_at_scale_is_fast_enough() -> None:
    import time

    spec = KeySpec(space=1_000_000, distribution="zipf", s=1.1, seed=2)
    start = time.perf_counter()
    counts = expected_distinct_keys(spec, [250_000] * 4, replicas=3)
    assert time.perf_counter() - start < 15  # about 1 s on one core
    assert 0 < sum(counts) < 1_000_000


def test_no_workers_no_keys() -> None:
    assert expected_distinct_keys(KeySpec(space=10), [], replicas=2) == [0, 0]


# --- delete churn --------------------------------------------------------------------------------------


def test_churn_exact_ops() -> None:
    spec = KeySpec(space=20, live=4)
    stream = ChurnStream(spec, 1, 2)  # stride 1,3,5,...,19 (10 keys), live share 2
    ops = [stream.next_op() for _ in range(12)]
    assert [(o.insert, o.delete) for o in ops[:4]] == [(1, None), (3, None), (5, 1), (7, 3)]
    assert (ops[10].insert, ops[10].delete) == (1, 17)  # the stride wraps
    assert stream.live_after(12) == [1, 3]


def test_churn_needs_room() -> None:
    with pytest.raises(ValueError, match="at most half the space"):
        KeySpec(space=10, live=6)
    with pytest.raises(ValueError, match="smaller than the 4 workers"):
        ChurnStream(KeySpec(space=100, live=3), 3, 4)


def simulate_churn(spec: KeySpec, ops: list[int], replicas: int, replicated: bool) -> list[int]:
    stores: list[set[str]] = [set() for _ in range(replicas)]
    streams = [ChurnStream(spec, w, len(ops)) for w in range(len(ops))]

    def apply(key: int, add: bool) -> None:
        name = key_name(key)
        for t in range(replicas) if replicated else [zlib.crc32(name.encode()) % replicas]:
            (stores[t].add if add else stores[t].discard)(name)

    for step in range(max(ops, default=0)):
        for w, stream in enumerate(streams):
            if step < ops[w]:
                op = stream.next_op()
                apply(op.insert, True)
                if op.delete is not None:
                    apply(op.delete, False)
    return [len(s) for s in stores]


@settings(max_examples=100, deadline=None)
@given(
    space=st.integers(min_value=16, max_value=300),
    live_share=st.floats(min_value=0.01, max_value=0.5),
    ops=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=4),
    replicas=st.integers(min_value=1, max_value=3),
    replicated=st.booleans(),
)
def test_expected_live_after_churn_matches_a_simulation(
    space: int, live_share: float, ops: list[int], replicas: int, replicated: bool
) -> None:
    workers = len(ops)
    live = max(workers, int(space * live_share))
    spec = KeySpec(space=space, live=live)
    try:
        for w in range(workers):
            ChurnStream(spec, w, workers)
    except ValueError:
        return  # not a valid churn layout (validated by the plan)
    assert expected_live_after_churn(spec, ops, replicas, replicated) == simulate_churn(spec, ops, replicas, replicated)


# --- spec validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"space": 0}, "space: must be a positive integer"),
        ({"space": 10, "distribution": "normal"}, "distribution: unknown 'normal'"),
        ({"space": 10, "distribution": "zipf", "s": 1.0}, "s: zipf exponent must be a finite number > 1"),
        ({"space": 10, "hot_fraction": 0}, "hot_fraction: must be in (0, 1]"),
        ({"space": 10, "hot_ops_fraction": 1.5}, "hot_ops_fraction: must be in [0, 1]"),
        ({"space": 10, "live": 0}, "live: must be a positive integer"),
    ],
)
def test_key_spec_errors_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as err:
        KeySpec(**kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_key_spec_round_trips_and_rejects_unknown_fields() -> None:
    spec = KeySpec(space=100, distribution="zipf", s=1.3, seed=4)
    assert KeySpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown key spec field"):
        KeySpec.from_dict({"space": 10, "skew": 2})
