"""Swiss-table maps (Go ≥ 1.24): small map, table growth, splits, directory (research §1).

A map is a 48-B ``maps.Map``. Up to 8 entries live in one group (the small map). From the
9th entry the map is a directory of tables; a table doubles its group array until it has
1024 slots, then splits into two 1024-slot tables (extendible hashing). With fresh inserts a
table at hash prefix ``p`` is split iff ``count(p) ≥ 897``, so the expected table count is
``E[T] = Σ_d 2^d · P(Binomial(N, 2^-d) ≥ 897)`` over the unsplit start tables, a closed
binomial sum. Nothing ever shrinks: the structure follows the high-water mark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from orchestrator.model import prob
from orchestrator.model.alloc import alloc
from orchestrator.model.boxing import slot_box
from orchestrator.model.estimate import Estimate, add_entry_costs, entry_cost
from orchestrator.model.gotypes import GoType, array_of, basic_type, map_slots, struct_layout

MAP_HEADER = 48
TABLE_HEADER = 32
GROUP_SLOTS = 8
MAX_TABLE_CAPACITY = 1024
#: A 1024-slot table holds at most this many entries; one more key splits it.
SPLIT_AT = MAX_TABLE_CAPACITY * 7 // 8 + 1  # 897
#: Sum hash-prefix depths up to this many (2^64 hashes: never deeper).
MAX_DEPTH = 64


@dataclass(frozen=True)
class Layout:
    """The compiler-built group type of ``map[K]V``."""

    key_slot: GoType
    elem_slot: GoType
    slot_size: int
    group_size: int
    group_has_pointers: bool
    indirect_key: bool
    indirect_elem: bool


def layout(key: GoType, elem: GoType) -> Layout:
    slots = map_slots(key, elem)
    k, v, ik, ie = slots.key, slots.elem, slots.indirect_key, slots.indirect_elem
    slot = struct_layout([("key", k, False), ("elem", v, False)], "slot")
    group = struct_layout(
        [("ctrl", basic_type("uint64"), False), ("slots", array_of(slot, GROUP_SLOTS, "slots"), False)],
        "group",
    )
    return Layout(k, v, slot.size, group.size, group.has_pointers, ik, ie)


def capacity_for(count: int, start: int = 16) -> int:
    """Slots of a table that grew from ``start`` slots to hold ``count`` fresh entries (≤ 896)."""
    cap = start
    while cap * 7 // 8 < count and cap < MAX_TABLE_CAPACITY:
        cap *= 2
    return cap


class _Swiss:
    def __init__(self, lay: Layout) -> None:
        self.lay = lay

    @lru_cache(maxsize=64)  # noqa: B019 - one small instance per call
    def groups(self, capacity: int) -> int:
        return alloc(capacity // GROUP_SLOTS * self.lay.group_size, self.lay.group_has_pointers)

    def table(self, capacity: int) -> int:
        return TABLE_HEADER + self.groups(capacity)

    def growth(self, start: int, final: int) -> int:
        """Bytes allocated by growing one table from ``start`` (exclusive) to ``final`` slots."""
        total = 0
        cap = start * 2
        while cap <= final:
            total += self.table(cap)
            cap *= 2
        return total


def _split_probabilities(m: int, d0: int) -> list[float]:
    """q[d] = P(a given depth-d hash prefix gets ≥ 897 of ``m`` keys), for d ≥ d0."""
    qs = [0.0] * (MAX_DEPTH + 1)
    for d in range(d0, MAX_DEPTH + 1):
        q = prob.tail_ge(m, 2.0**-d, SPLIT_AT)
        qs[d] = q
        if q < 1e-18 and m * 2.0**-d < SPLIT_AT:
            break
    return qs


def structure(key: GoType, elem: GoType, m: int, hint: int | None) -> Estimate:
    """Expected bytes of the map structure after ``m`` fresh inserts (no per-entry costs)."""
    lay = layout(key, elem)
    sw = _Swiss(lay)
    big = sw.table(MAX_TABLE_CAPACITY)
    details: dict[str, float | int | str] = {"group_bytes": lay.group_size, "slot_bytes": lay.slot_size}
    bd: dict[str, float] = {"map_header": MAP_HEADER}

    presized = hint is not None and hint > GROUP_SLOTS
    if not presized and m <= GROUP_SLOTS:
        small = sw.groups(GROUP_SLOTS) if m > 0 else 0
        bd["small_group"] = small
        live: float = MAP_HEADER + small
        details["tables"] = 0
        return Estimate(live, live, live, live, bd, details=details)

    if presized:
        assert hint is not None
        target = hint * GROUP_SLOTS // 7
        dir_size = 1 << max(0, math.ceil(math.log2(-(-target // MAX_TABLE_CAPACITY))))
        while dir_size * MAX_TABLE_CAPACITY < target:
            dir_size *= 2
        c0 = max(GROUP_SLOTS, 1 << math.ceil(math.log2(max(1, target // dir_size))))
        d0 = dir_size.bit_length() - 1
        cum: float = MAP_HEADER + alloc(8 * dir_size, True) + dir_size * sw.table(c0)
    else:
        c0, d0 = 16, 0
        cum = MAP_HEADER + sw.groups(GROUP_SLOTS) + alloc(8, True) + sw.table(16)
    n0 = 1 << d0
    details["hint_tables"] = n0 if presized else 0

    qs = _split_probabilities(m, d0)
    # Unsplit start tables: capacity grows from c0 with their own count.
    limit = SPLIT_AT - 1
    p = 2.0**-d0

    def unsplit_cost(c: int) -> float:
        return sw.table(max(c0, capacity_for(c, c0))) if c <= limit else 0.0

    def unsplit_growth(c: int) -> float:
        return sw.growth(c0, capacity_for(c, c0)) if c <= limit else 0.0

    if n0 == 1:
        c = m
        tables_unsplit = 1.0 if c <= limit else 0.0
        e_unsplit = unsplit_cost(c)
        v_unsplit = 0.0
        e_growth = unsplit_growth(c)
    else:
        tables_unsplit = n0 * (1.0 - qs[d0])
        e1 = prob.expect(m, p, unsplit_cost, k_max=limit)
        e2 = prob.expect(m, p, lambda c: unsplit_cost(c) ** 2, k_max=limit)
        e_unsplit = n0 * e1
        v_unsplit = n0 * max(0.0, e2 - e1 * e1)
        e_growth = n0 * prob.expect(m, p, unsplit_growth, k_max=limit)
    # Every split turns one table into two 1024-slot tables.
    splits = sum(n0 * 2.0 ** (d - d0) * qs[d] for d in range(d0, MAX_DEPTH + 1))
    var_splits = sum(n0 * 2.0 ** (d - d0) * qs[d] * (1 - qs[d]) for d in range(d0, MAX_DEPTH + 1))
    tables = n0 + splits
    split_tables = tables - tables_unsplit
    # Directory: depth D = max(d0, 1 + deepest split).
    dir_e, dir_lo, dir_hi, dir_cum = _directory(qs, d0, n0)

    live_tables = e_unsplit + split_tables * big
    bd["directory"] = dir_e
    bd["tables"] = tables * TABLE_HEADER
    bd["groups"] = live_tables - tables * TABLE_HEADER
    live = MAP_HEADER + dir_e + live_tables
    # Tables are whole: the range runs from the surely-split prefixes to the possibly-split ones.
    t_min = n0 + sum(n0 * 2.0 ** (d - d0) for d in range(d0, MAX_DEPTH + 1) if qs[d] > 1 - 1e-12)
    t_max = n0 + sum(n0 * 2.0 ** (d - d0) for d in range(d0, MAX_DEPTH + 1) if qs[d] > 1e-12)
    t_sd = math.sqrt(var_splits)
    t_lo = max(t_min, math.floor(tables - 4 * t_sd - 1e-9))
    t_hi = min(t_max, math.ceil(tables + 4 * t_sd + 1e-9))
    u_sd = 4 * math.sqrt(v_unsplit)
    low = MAP_HEADER + dir_lo + max(0.0, live_tables - (tables - t_lo) * big - u_sd)
    high = MAP_HEADER + dir_hi + live_tables + (t_hi - tables) * big + u_sd
    # Growth to 1024 of every start table that ends up split, then 2 new tables per split.
    split_starts = n0 - tables_unsplit
    cum += e_growth + split_starts * sw.growth(c0, MAX_TABLE_CAPACITY)
    cum += 2 * splits * big + dir_cum
    details["tables"] = tables
    details["tables_sd"] = t_sd
    details["tables_range"] = f"{t_lo:.0f}..{t_hi:.0f}"
    return Estimate(live, low, high, cum, bd, details=details)


def _directory(qs: list[float], d0: int, n0: int) -> tuple[float, float, float, float]:
    """Expected, low, high live bytes of the directory, and expected cumulative bytes."""
    # s[d] = P(some depth-d prefix splits) ≈ 1 - (1 - q_d)^(2^d)
    probs: dict[int, float] = {}
    dir_size = {d: alloc(8 * (1 << d), True) for d in range(d0, MAX_DEPTH + 2)}
    s_vals = []
    for d in range(d0, MAX_DEPTH + 1):
        q = qs[d]
        s = -math.expm1((1 << d) * math.log1p(-q)) if q < 1 else 1.0
        s_vals.append((d, s))
        if q == 0.0:
            break
    # P(D = d0) = 1 - s[d0]; P(D = d+1) = s[d] - s[d+1]
    probs[d0] = 1.0 - s_vals[0][1] if s_vals else 1.0
    for i, (d, s) in enumerate(s_vals):
        nxt = s_vals[i + 1][1] if i + 1 < len(s_vals) else 0.0
        probs[d + 1] = max(0.0, s - nxt)
    total = sum(probs.values()) or 1.0
    expected = sum(pr * dir_size[d] for d, pr in probs.items()) / total
    likely = [d for d, pr in probs.items() if pr > 1e-4]
    low = dir_size[min(likely)]
    high = dir_size[max(likely)]
    # Cumulative: every directory size from d0+1 up to D was allocated once.
    cum = 0.0
    for d, pr in probs.items():
        cum += pr * sum(dir_size[j] for j in range(d0 + 1, d + 1))
    return expected, low, high, cum


def predict(key: GoType, elem: GoType, entries: int, *, high_water: int, hint: int | None) -> Estimate:
    """Live and cumulative heap bytes of ``map[key]elem`` on Go ≥ 1.24 (module docstring)."""
    m = max(entries, high_water)
    lay = layout(key, elem)
    indirect = [t for t, ind in ((key, lay.indirect_key), (elem, lay.indirect_elem)) if ind]
    return add_entry_costs(
        structure(key, elem, m, hint),
        key,
        elem,
        indirect,
        entries,
        m,
        "Go maps never shrink (delete and clear keep every table)",
    )


def live_given_tables(key: GoType, elem: GoType, entries: int, *, dir_len: int, capacities: dict[int, int]) -> int:
    """Exact live bytes once the realised directory length and table capacities are known
    (what the measuring program reads through unsafe): the model minus its randomness."""
    lay = layout(key, elem)
    sw = _Swiss(lay)
    if dir_len == 0:
        structure_bytes = MAP_HEADER + (sw.groups(GROUP_SLOTS) if entries > 0 else 0)
    else:
        structure_bytes = MAP_HEADER + alloc(8 * dir_len, True)
        structure_bytes += sum(n * sw.table(cap) for cap, n in capacities.items())
    boxes = [slot_box(key), slot_box(elem)]
    indirect = [t for t, ind in ((key, lay.indirect_key), (elem, lay.indirect_elem)) if ind]
    return structure_bytes + entry_cost(boxes, indirect, entries).total
