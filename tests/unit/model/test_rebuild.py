"""A map rebuilt every R deletes: the simulated Swiss tables and the range over one rebuild cycle."""

from __future__ import annotations

import random

import pytest

from orchestrator.core.errors import UsageError
from orchestrator.model import predict, swiss
from orchestrator.model.gotypes import parse
from orchestrator.model.rebuild import rebuild_cycle
from orchestrator.model.swisschurn import GROUP_SLOTS, SwissMap

KEY, ELEM = parse("string"), parse("[32]byte")
GO_TYPE = "map[string][32]byte"


def _filled(n: int, *, hint: int = 0, seed: int = 1, prune: bool = True) -> SwissMap:
    m = SwissMap(random.Random(seed), hint=hint, prune=prune)
    for i in range(n):
        m.insert(i)
    return m


def _bytes(m: SwissMap, n: int) -> int:
    return swiss.live_given_tables(KEY, ELEM, n, dir_len=m.dir_len(), capacities=m.capacities())


@pytest.mark.parametrize("n", [0, 8, 9, 100, 896, 1000, 5000])
def test_fresh_inserts_build_the_tables_the_closed_form_predicts(n: int) -> None:
    # Below the split point the layout is deterministic: the simulation must match the model exactly.
    m = _filled(n)
    assert len(m) == n
    assert _bytes(m, n) == predict(GO_TYPE, n).live_bytes


def test_a_hint_presizes_like_make() -> None:
    m = _filled(25_001, hint=25_001)
    # make(map, 25001): 25001·8/7 = 28572 slots → 28 → 32 tables of 1024, depth 5, before any insert.
    assert (m.dir_len(), m.capacities()) == (32, {1024: 32})
    low, high = predict(GO_TYPE, 25_001, hint=25_001).live_bytes_range
    assert low <= _bytes(m, 25_001) <= high


def test_deletes_free_slots_or_leave_tombstones_and_inserts_reuse_them() -> None:
    m = _filled(700, hint=700)  # one 1024-slot table, 896 fill before growth
    (t,) = m.tables()
    left = t.growth_left
    for i in range(100):
        m.delete(i)
    # Every delete either freed its slot (growth back) or left a tombstone: nothing is lost.
    assert t.used == 600
    assert t.growth_left + t.tombstones() == left + 100
    for i in range(700, 800):
        m.insert(i)
    assert t.used == 700 and len(m) == 700


def test_churn_grows_a_map_that_never_rebuilds() -> None:
    # Measured on go1.26.8 (40 maps, docs/model.md): 10 000 churn ops on a map[string][32]byte
    # pre-sized for 25 001 keys end at 38 … 45 tables from 32. A smaller case keeps the test fast.
    # 6 500 keys fill the 8 pre-sized tables to 79 %: churn runs some out of room.
    m = _filled(6_500, hint=6_500, seed=3)
    start = len(m.tables())
    for j in range(8_000):
        m.insert(6_500 + j)
        m.delete(j)
    assert len(m) == 6_500
    assert len(m.tables()) > start == 8
    assert set(m.capacities()) == {1024}
    # The directory always covers the tables: each table's prefix spans 2^(global-local) entries.
    assert len(m.directory) == 1 << m.global_depth
    assert all(m.directory[t.prefix << (m.global_depth - t.local_depth)] is t for t in m.tables())


def test_small_maps_become_a_table_at_the_ninth_key() -> None:
    m = _filled(GROUP_SLOTS)
    assert m.dir_len() == 0
    m.insert(GROUP_SLOTS)
    assert m.capacities() == {16: 1}
    for i in range(GROUP_SLOTS + 1):
        m.delete(i)
    assert len(m) == 0


def test_the_cycle_spans_just_rebuilt_to_just_before_the_next_rebuild() -> None:
    c = rebuild_cycle(GO_TYPE, 6_500, 1_000, go_version="1.26")
    rebuilt = predict(GO_TYPE, 6_500, hint=6_500).live_bytes
    assert c.method == "simulated" and c.runs == 8
    assert c.low <= c.start <= c.expected <= c.end <= c.high
    assert c.low <= rebuilt <= c.high
    assert c.high > c.start  # churn between rebuilds adds tables
    # Deterministic: the same numbers give the same range (a verdict must not flip on a reseed).
    assert rebuild_cycle.__wrapped__(GO_TYPE, 6_500, 1_000, go_version="1.26") == c


def test_a_short_cycle_stays_at_the_rebuilt_map() -> None:
    # 1 000 keys in two half-full tables: 50 deletes between rebuilds cannot fill a table.
    c = rebuild_cycle("map[string]int64", 1_000, 50, go_version="1.26")
    assert c.low <= c.start == c.end <= c.high
    assert c.high - c.low <= 64


def test_a_map_that_never_rebuilds_leaves_the_cycle() -> None:
    # The leaky store's churn (4× the live keys, no rebuild) ends far above the top of the cycle.
    c = rebuild_cycle(GO_TYPE, 6_500, 1_000, go_version="1.26")
    m = _filled(6_500, seed=9)
    for j in range(26_000):
        m.insert(6_500 + j)
        m.delete(j)
    assert _bytes(m, 6_500) > c.high * 1.2


def test_classic_maps_use_the_churn_bound_and_huge_maps_the_fresh_key_bound() -> None:
    classic = rebuild_cycle(GO_TYPE, 25_001, 10_000, go_version="1.23")
    assert classic.method == "classic churn bound"
    assert classic.high == predict(GO_TYPE, 25_001, go_version="1.23").churn.live_bytes_high
    huge = rebuild_cycle(GO_TYPE, 1_000_000, 100_000, go_version="1.26")
    assert huge.method == "bound"
    assert huge.high >= predict(GO_TYPE, 1_100_000).live_bytes
    assert huge.low <= predict(GO_TYPE, 1_000_000, hint=1_000_000).live_bytes


@pytest.mark.parametrize(
    ("go_type", "entries", "every", "part"),
    [
        ("sync.Map[string]int64", 10, 5, "single map"),
        ("[4]map[string]int64", 10, 5, "single map"),
        (GO_TYPE, 10, 0, "rebuild_every ≥ 1"),
    ],
)
def test_refused(go_type: str, entries: int, every: int, part: str) -> None:
    with pytest.raises(UsageError, match=part):
        rebuild_cycle(go_type, entries, every)


@pytest.mark.parametrize("go", ["1.23", "1.24", "1.26"])
@pytest.mark.parametrize("value_type", ["[]byte", "string", "int64", "[8]byte", "[128]byte", "[256]byte"])
def test_every_deleteretain_value_type_has_a_cycle(value_type: str, go: str) -> None:
    c = rebuild_cycle(f"map[string]{value_type}", 1_500, 400, go_version=go)
    assert 0 < c.low <= c.start <= c.end <= c.high
    assert c.low <= c.expected <= c.high
