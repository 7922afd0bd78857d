"""A map rebuilt every R deletes under delete+insert churn: the bytes it can hold over one cycle.

The fix for a map that never shrinks (seed §2.5, the ``deleteretain`` store) copies the live
entries into ``make(map[K]V, len)`` after every R deletes. Between two rebuilds the churn adds
what it adds to any map (tombstones, table growth and splits), so a sample lands anywhere
between the map just rebuilt and the map R − 1 deletes later. ``rebuild_cycle`` predicts that
range instead of a hand-picked tolerance:

* **Swiss maps (Go ≥ 1.24)**: the cycle is simulated slot by slot (:mod:`.swisschurn`), from
  both starts a cycle can have: a pre-sized rebuild, and the first fill (a map grown by inserts,
  before the first rebuild). ``low`` is the smaller start; ``high`` the larger of the highest
  simulated end and the mean end + 4σ (the model's usual range, in whole tables); ``expected``
  the mean over evenly spaced points of the cycle. Checked against go1.26.8 (docs/model.md,
  "Rebuild cycles").
* **Classic hmap (Go ≤ 1.23)**: churn fills overflow buckets until a same-size grow; the
  model's documented churn bound (``Prediction.churn``) is the top of the cycle.

Maps too large to simulate in ``MAX_SIMULATED_OPS`` fall back to a bound: every insert of the
cycle taken as a fresh key (the structure of ``entries + R`` keys), which holds because a table
only splits when its keys, live or tombstoned, fill it.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass
from functools import lru_cache

from orchestrator.core.errors import UsageError
from orchestrator.model import swiss
from orchestrator.model.gotypes import GoType, container_of
from orchestrator.model.predict import DEFAULT_GO, parse_go_version, predict
from orchestrator.model.swisschurn import SwissMap

#: Simulated cycles per start (pre-sized rebuild, first fill).
RUNS = 4
#: Points of each simulated cycle averaged into ``expected``.
CYCLE_POINTS = 16
#: Inserts + deletes the simulation may do in all (≈ 10 µs each): beyond it, fewer runs, then the bound.
MAX_SIMULATED_OPS = 1_000_000
MIN_RUNS = 2


@dataclass(frozen=True)
class RebuildCycle:
    """Container bytes of a map rebuilt every ``rebuild_every`` deletes, over one cycle."""

    go_type: str
    go_version: str
    entries: int
    rebuild_every: int
    low: int
    """Just rebuilt (or just filled, before the first rebuild): the fewest bytes of the cycle."""
    high: int
    """Just before the next rebuild: the most bytes of the cycle."""
    expected: int
    """The mean over the cycle: where a sample taken at no particular point is expected."""
    start: int
    """Expected just after a rebuild."""
    end: int
    """Expected just before the next rebuild."""
    method: str
    """``simulated``, ``classic churn bound`` or ``bound``."""
    runs: int
    note: str

    def to_json(self) -> dict[str, object]:
        return {
            "rebuild_every": self.rebuild_every,
            "entries": self.entries,
            "low": self.low,
            "high": self.high,
            "expected": self.expected,
            "start": self.start,
            "end": self.end,
            "method": self.method,
            "runs": self.runs,
            "note": self.note,
        }


@lru_cache(maxsize=32)  # a check asks once per sample point and replica, with the same numbers
def rebuild_cycle(
    go_type: str, entries: int, rebuild_every: int, *, go_version: str = DEFAULT_GO, seed: int = 0
) -> RebuildCycle:
    """The range of a ``map[K]V``'s container bytes over one rebuild cycle (module docstring).

    ``entries`` is the live count (constant under the churn), ``rebuild_every`` the deletes
    between rebuilds. Deterministic for a given ``seed``.
    """
    version = parse_go_version(go_version)
    container = container_of(go_type, version)
    if container.kind != "map" or container.shards != 1:
        raise UsageError(
            f"{container.text}: a rebuild cycle is modelled for a single map[K]V",
            hint="give a map[K]V type (the deleteretain store's design)",
        )
    if entries < 0 or rebuild_every < 1:
        raise UsageError(
            f"a rebuild cycle needs entries ≥ 0 and rebuild_every ≥ 1 (got {entries}, {rebuild_every})",
            hint="rebuild_every is the deletes between two rebuilds",
        )
    v = f"{version[0]}.{version[1]}"
    rebuilt = predict(go_type, entries, go_version=v, hint=entries)
    filled = predict(go_type, entries, go_version=v)
    if version < (1, 24):
        high = max(rebuilt.live_bytes_range[1], filled.churn.live_bytes_high or filled.live_bytes_range[1])
        return RebuildCycle(
            container.text, v, entries, rebuild_every,
            low=min(rebuilt.live_bytes_range[0], filled.live_bytes_range[0]),
            high=high,
            expected=filled.live_bytes,
            start=rebuilt.live_bytes,
            end=high,
            method="classic churn bound",
            runs=0,
            note="classic hmap: churn fills overflow buckets until a same-size grow; the top of the cycle "
            "is the model's churn bound (documented, not simulated)",
        )  # fmt: skip
    per_run = 2 * (entries + rebuild_every)
    runs = min(RUNS, MAX_SIMULATED_OPS // max(1, 2 * per_run))
    if runs < MIN_RUNS:
        bound = predict(go_type, entries, go_version=v, high_water=entries + rebuild_every)
        return RebuildCycle(
            container.text, v, entries, rebuild_every,
            low=min(rebuilt.live_bytes_range[0], filled.live_bytes_range[0]),
            high=max(bound.live_bytes_range[1], rebuilt.live_bytes_range[1]),
            expected=(rebuilt.live_bytes + bound.live_bytes) // 2,
            start=rebuilt.live_bytes,
            end=bound.live_bytes,
            method="bound",
            runs=0,
            note=f"too large to simulate ({per_run:,} ops a cycle): the top is the structure of "
            f"{entries + rebuild_every:,} fresh keys, which churn of {rebuild_every:,} deletes cannot exceed",
        )  # fmt: skip
    prune = version >= (1, 25)
    starts: list[int] = []
    ends: list[int] = []
    means: list[float] = []
    rng = random.Random(seed)
    for presized in (True, False):
        for _ in range(runs):
            s, e, m = _simulate(container.key, container.elem, entries, rebuild_every, presized, prune, rng)
            starts.append(s)
            ends.append(e)
            means.append(m)
    end_mean = statistics.fmean(ends)
    end_sd = statistics.pstdev(ends)
    high = max(max(ends), math.ceil(end_mean + 4 * end_sd))
    low = min(min(starts), rebuilt.live_bytes_range[0])
    return RebuildCycle(
        container.text, v, entries, rebuild_every,
        low=low,
        high=high,
        expected=round(statistics.fmean(means)),
        start=round(statistics.fmean(starts)),
        end=round(end_mean),
        method="simulated",
        runs=len(ends),
        note=f"Swiss tables simulated over {len(ends)} cycles of {rebuild_every:,} deletes and inserts "
        f"({'with' if prune else 'without'} tombstone pruning): {min(ends):,} … {max(ends):,} B before a rebuild",
    )  # fmt: skip


def _simulate(
    key: GoType, elem: GoType, entries: int, rebuild_every: int, presized: bool, prune: bool, rng: random.Random
) -> tuple[int, int, float]:
    """One cycle: (bytes at its start, bytes just before the next rebuild, mean over the cycle)."""
    m = SwissMap(random.Random(rng.getrandbits(64)), hint=entries if presized else 0, prune=prune)
    for i in range(entries):
        m.insert(i)

    def price() -> int:
        return swiss.live_given_tables(key, elem, entries, dir_len=m.dir_len(), capacities=m.capacities())

    start = price()
    points = [start]
    step = max(1, rebuild_every // CYCLE_POINTS)
    # The store rebuilds inside the R-th delete: the fullest state is R inserts and R − 1 deletes on
    # (the load puts before it deletes).
    for j in range(rebuild_every):
        m.insert(entries + j)
        if j < rebuild_every - 1:
            m.delete(j)  # the oldest key: the load's window slides
        if (j + 1) % step == 0:
            points.append(price())
    end = price()
    return start, end, statistics.fmean(points)
