"""Classic hmap maps (Go ≤ 1.23; research §2).

A map is a 48-B ``hmap`` pointing at ``2^B`` buckets of 8 slots; ``B`` grows when the
average load would pass 6.5. From ``B ≥ 4`` the bucket array carries ``2^(B-4)``
preallocated overflow buckets, rounded up to fill the size class. Keys land in buckets by
hash, so chains longer than 8 need overflow buckets: a bucket that gets ``k`` keys holds
``ceil(k/8)`` buckets, and the expected count is a binomial sum. Growth is incremental:
the old array stays live until ``≈ 2^(B-1)·ln 2`` writes have evacuated it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.model import prob
from orchestrator.model.alloc import alloc, slice_growth_caps, usable
from orchestrator.model.estimate import Estimate, add_entry_costs
from orchestrator.model.gotypes import GoType, array_of, basic_type, map_slots, pointer_to, struct_layout

HMAP = 48
MAPEXTRA = 24
SLICE_HEADER = 24
BUCKET_SLOTS = 8
LOAD_NUM, LOAD_DEN = 13, 2
#: Evacuating 2^(B-1) old buckets takes ≈ ln 2 · 2^(B-1) writes (sd ≈ 0.27·sqrt(2^(B-1))).
EVACUATION_WRITES = math.log(2)
EVACUATION_SD = 0.27


@dataclass(frozen=True)
class Layout:
    bucket_size: int
    bucket_has_pointers: bool
    indirect_key: bool
    indirect_elem: bool


def layout(key: GoType, elem: GoType) -> Layout:
    slots = map_slots(key, elem)
    k, v, ik, ie = slots.key, slots.elem, slots.indirect_key, slots.indirect_elem
    ptrs = k.has_pointers or v.has_pointers
    overflow = pointer_to(basic_type("uint8")) if ptrs else basic_type("uintptr")
    bucket = struct_layout(
        [
            ("tophash", array_of(basic_type("uint8"), BUCKET_SLOTS, "tophash"), False),
            ("keys", array_of(k, BUCKET_SLOTS, "keys"), False),
            ("elems", array_of(v, BUCKET_SLOTS, "elems"), False),
            ("overflow", overflow, False),
        ],
        "bucket",
    )
    return Layout(bucket.size, ptrs, ik, ie)


def over_load_factor(count: int, b: int) -> bool:
    return count > BUCKET_SLOTS and count > LOAD_NUM * ((1 << b) // LOAD_DEN) if b > 0 else count > BUCKET_SLOTS


def b_for(count: int) -> int:
    b = 0
    while over_load_factor(count, b):
        b += 1
    return b


def grow_trigger(b: int) -> int:
    """The insert number that grows the map from B = b-1 to b."""
    return BUCKET_SLOTS + 1 if b == 1 else LOAD_NUM * (1 << (b - 1)) // LOAD_DEN + 1


class _Classic:
    def __init__(self, lay: Layout) -> None:
        self.lay = lay

    def nbuckets(self, b: int) -> int:
        n = 1 << b
        if b >= 4:
            n += 1 << (b - 4)
            size = n * self.lay.bucket_size
            n = usable(size, self.lay.bucket_has_pointers) // self.lay.bucket_size
        return n

    def array(self, b: int) -> int:
        return alloc(self.nbuckets(b) * self.lay.bucket_size, self.lay.bucket_has_pointers)

    def bucket(self) -> int:
        return alloc(self.lay.bucket_size, self.lay.bucket_has_pointers)

    def overflow(self, count: int, b: int) -> tuple[float, float, float]:
        """(expected overflow buckets needed, sd, expected beyond the preallocated ones)."""
        if b == 0 or count <= BUCKET_SLOTS:
            return 0.0, 0.0, 0.0
        p = 2.0**-b

        def g(k: int) -> float:
            return max(0, -(-k // BUCKET_SLOTS) - 1)

        e1 = prob.expect(count, p, g)
        e2 = prob.expect(count, p, lambda k: g(k) ** 2)
        mean = (1 << b) * e1
        sd = math.sqrt(max(0.0, (1 << b) * (e2 - e1 * e1)))
        prealloc = self.nbuckets(b) - (1 << b)
        return mean, sd, _expected_excess(mean, sd, prealloc)

    def overflow_bytes(self, count: int, b: int) -> tuple[float, float, float, float]:
        """(expected, low, high) bytes of malloc'd overflow buckets plus the noscan overflow
        slice at level ``b`` holding ``count`` keys, and the expected overflow bucket count."""
        ovf, sd, extra = self.overflow(count, b)
        prealloc = self.nbuckets(b) - (1 << b) if b > 0 else 0
        lo_n = max(0.0, ovf - 4 * sd)
        hi_n = ovf + 4 * sd + (1 if sd > 0 else 0)
        expected = extra * self.bucket() + self.overflow_slice(ovf)
        low = max(0.0, lo_n - prealloc) * self.bucket() + self.overflow_slice(lo_n)
        high = max(0.0, hi_n - prealloc) * self.bucket() + self.overflow_slice(hi_n)
        return expected, min(low, expected), max(high, expected), ovf

    def overflow_slice(self, buckets: float) -> int:
        """Live bytes of ``h.extra.overflow`` (noscan buckets only): header + backing array."""
        n = round(buckets)
        if self.lay.bucket_has_pointers or n <= 0:
            return 0
        caps = slice_growth_caps(n, 8, True)
        return SLICE_HEADER + alloc(caps[-1] * 8, True)

    def overflow_slice_cum(self, buckets: float) -> int:
        n = round(buckets)
        if self.lay.bucket_has_pointers or n <= 0:
            return 0
        return SLICE_HEADER + sum(alloc(c * 8, True) for c in slice_growth_caps(n, 8, True))


def _expected_excess(mean: float, sd: float, threshold: int) -> float:
    """E[max(0, X - threshold)] for X ≈ Normal(mean, sd)."""
    if threshold <= 0 or sd <= 1e-9:
        return max(0.0, mean - threshold)
    z = (mean - threshold) / sd
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + math.erf(z / math.sqrt(2)))
    return (mean - threshold) * cdf + sd * phi


def _p_still_growing(writes: int, old_buckets: int) -> float:
    """P(the old bucket array is still referenced after ``writes`` writes since the grow)."""
    if old_buckets <= 1:
        return 0.0 if writes >= 1 else 1.0
    if old_buckets == 2:
        return 0.0 if writes >= 1 else 1.0
    mean = EVACUATION_WRITES * old_buckets
    sd = EVACUATION_SD * math.sqrt(old_buckets)
    if writes >= old_buckets:
        return 0.0
    if writes < old_buckets / 2:
        return 1.0
    z = (writes + 0.5 - mean) / sd
    return 1.0 - 0.5 * (1 + math.erf(z / math.sqrt(2)))


def structure(key: GoType, elem: GoType, m: int, hint: int | None) -> Estimate:
    """Expected bytes of the hmap structure after ``m`` fresh inserts (no per-entry costs)."""
    lay = layout(key, elem)
    cl = _Classic(lay)
    b0 = b_for(hint) if hint and hint > BUCKET_SLOTS else 0
    b = max(b0, b_for(m))
    bd: dict[str, float] = {"hmap": HMAP}
    details: dict[str, float | int | str] = {"B": b, "bucket_bytes": lay.bucket_size}
    notes: list[str] = []
    if m == 0 and b0 == 0:
        return Estimate(HMAP, HMAP, HMAP, HMAP, bd, details=details)

    arr = cl.array(b) if b > 0 else cl.bucket()
    bd["buckets"] = arr
    excess, excess_lo, excess_hi, ovf = cl.overflow_bytes(m, b)
    details["overflow_buckets"] = round(ovf, 1)
    prealloc = cl.nbuckets(b) - (1 << b) if b > 0 else 0
    bd["overflow_buckets"] = excess - cl.overflow_slice(ovf)
    has_extra = prealloc > 0 or ovf > 0.5
    bd["mapextra"] = MAPEXTRA if has_extra else 0
    bd["overflow_slice"] = cl.overflow_slice(ovf)

    # The old array during an incremental grow (not when the map was made that big).
    old = 0.0
    old_lo = old_hi = 0.0
    if b > b0 and b >= 1:
        c0 = grow_trigger(b)
        old_b = b - 1
        writes = m - c0 + 1
        o_exp, o_lo, o_hi, _ = cl.overflow_bytes(c0 - 1, old_b)
        o_arr = cl.array(old_b) if old_b > 0 else cl.bucket()
        p_grow = _p_still_growing(writes, 1 << old_b)
        old = p_grow * (o_arr + o_exp)
        old_lo = o_arr + o_lo if p_grow > 1 - 1e-6 else 0.0
        old_hi = o_arr + o_hi if p_grow > 1e-6 else 0.0
        details["p_evacuating"] = round(p_grow, 4)
        if 1e-6 < p_grow < 1 - 1e-6:
            notes.append("an incremental grow may still hold the old bucket array (random: evacuation progress)")
    bd["oldbuckets"] = old
    live = sum(bd.values())
    low = live - excess - old + excess_lo + old_lo
    high = live - excess - old + excess_hi + old_hi

    # Cumulative: every bucket array and the overflow buckets of every finished level.
    cum: float = HMAP + (MAPEXTRA if has_extra else 0)
    start = b0
    if b0 == 0:
        cum += cl.bucket()
        start = 0
    elif b0 > 0:
        cum += cl.array(b0)
    for lvl in range(start + 1, b + 1):
        cum += cl.array(lvl)
    for lvl in range(max(start, 1), b):
        count = LOAD_NUM * (1 << lvl) // LOAD_DEN
        l_ovf, _, l_extra = cl.overflow(count, lvl)
        cum += l_extra * cl.bucket() + cl.overflow_slice_cum(l_ovf)
    cum += bd["overflow_buckets"] + cl.overflow_slice_cum(ovf)
    return Estimate(live, min(low, live), max(high, live), cum, bd, notes=notes, details=details)


def old_array_high(key: GoType, elem: GoType, m: int) -> int:
    """Most bytes an old bucket array (with its overflow buckets) can hold for a map of ``m`` keys:
    the array one level below ``m``'s, as an incremental grow keeps it until evacuation ends."""
    b = b_for(m)
    if b == 0:
        return 0
    cl = _Classic(layout(key, elem))
    old_b = b - 1
    _, _, o_hi, _ = cl.overflow_bytes(grow_trigger(b) - 1, old_b)
    return round((cl.array(old_b) if old_b > 0 else cl.bucket()) + o_hi)


def predict(key: GoType, elem: GoType, entries: int, *, high_water: int, hint: int | None) -> Estimate:
    """Live and cumulative heap bytes of ``map[key]elem`` on Go ≤ 1.23 (module docstring)."""
    m = max(entries, high_water)
    lay = layout(key, elem)
    indirect = [t for t, ind in ((key, lay.indirect_key), (elem, lay.indirect_elem)) if ind]
    return add_entry_costs(structure(key, elem, m, hint), key, elem, indirect, entries, m, "delete never frees buckets")
