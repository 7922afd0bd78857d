"""The model check on a user's service: its heap growth against what its mapprobe maps explain.

A service holds more than its maps (buffers, caches, goroutines), so the check never compares the
whole heap with the model. It compares the live heap's growth between two points (``since``, by
default the deploy baseline, and each ``at`` point) with the growth the model attributes to the
maps the check names (one, a list, or "*": every map the service registers), from the entries and
high-water marks the service itself reports through mapprobe. A map is charged for:

- its slots: the reference model of the map's Go type at its entries and high-water mark;
- what its entries own beyond the slots (string bytes, pointees, slices): mapprobe's WithEntries
  measures the mean per entry on a sample of entries, or the check declares it (``owns:``).

What the maps do not explain is "left over". The check allows ``max(relative, floor)``: the
tolerance taken of the maps' predicted size, or the noise floor the run measured
(noise_floor.py), whichever is larger. Each point is sampled several times; the median sample
speaks for the point, the spread of the repeats feeds the floor.

Samples without mapprobe's GC handler are approximate (the heap marked live by the service's last
GC); their floor is wider (noise_floor.RUNTIME_FLOOR_BYTES). A service that serves no live-heap
figure at all gets inconclusive with the fix; go_memstats_heap_alloc_bytes is never a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.checks.noise_floor import Floor, floor_of, median_index
from orchestrator.checks.verdict import CheckResult, Verdict, worst
from orchestrator.journal import HeapSample, HeapSource, Journal, MapReading
from orchestrator.model.predict import predict
from orchestrator.scenario.spec import ALL_MAPS, ModelCheck, Scenario, TargetSpec

NO_HEAP_SOURCE_FIX = (
    "register any map with a current mapprobe (it exports mapquake_heap_live_bytes), or mount "
    "mapprobe.NewGCHandler and set the target's gc_path for exact samples"
)
"""The one-line fix when a service serves no live-heap figure."""

PINNING_PER_ENTRY_BYTES = 64
"""Left-over growth per new entry above which the evidence says values may pin larger buffers."""


def _go_minor(sample: HeapSample, target: TargetSpec) -> str:
    """The Go version the service runs ("go1.26.8" -> "1.26"), else the target's."""
    version = sample.go_version.removeprefix("go")
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else target.go


def _labels(sample: HeapSample) -> str:
    return ", ".join(m.map or '""' for m in sample.maps)


def probed_maps(sample: HeapSample, names: Sequence[str]) -> tuple[MapReading, ...] | str:
    """The readings of the maps ``names`` (() = the only map, ("*",) = all of them), or why not."""
    if not sample.maps:
        return "the service serves no mapprobe map (register it with mapprobe.Register)"
    if tuple(names) == (ALL_MAPS,):
        return sample.maps
    if not names:
        if len(sample.maps) == 1:
            return sample.maps
        return f"the service registers {len(sample.maps)} maps ({_labels(sample)}); name one or more with map:"
    by_name = {m.map: m for m in sample.maps}
    missing = [n for n in names if n not in by_name]
    if missing:
        return f"the service has no mapprobe map {', '.join(repr(n) for n in missing)} (its maps: {_labels(sample)})"
    return tuple(by_name[n] for n in names)


@dataclass(frozen=True)
class MapBytes:
    """What the model attributes to one map at one sample."""

    map: str
    go_type: str
    entries: int
    high_water: int
    slots: int
    slots_low: int
    slots_high: int
    owned: int
    owned_from: str
    """"mapprobe" (sampled over n entries), "declared" (owns:) or "none"."""

    @property
    def total(self) -> int:
        return self.slots + self.owned


def _owned_per_entry(reading: MapReading, declared: dict[str, int]) -> tuple[float, str]:
    if reading.owned_key_bytes is not None or reading.owned_value_bytes is not None:
        return (reading.owned_key_bytes or 0.0) + (reading.owned_value_bytes or 0.0), "mapprobe"
    for name in (reading.map, ALL_MAPS):
        if name in declared:
            return float(declared[name]), "declared"
    return 0.0, "none"


def map_bytes(reading: MapReading, go: str, declared: dict[str, int]) -> MapBytes:
    per_entry, owned_from = _owned_per_entry(reading, declared)
    owned = round(per_entry * reading.entries)
    if reading.entries == 0 and reading.high_water == 0:
        return MapBytes(reading.map, reading.go_type, 0, 0, 0, 0, 0, 0, owned_from)
    p = predict(reading.go_type, reading.entries, go_version=go, high_water=max(reading.entries, reading.high_water))
    lo, hi = p.live_bytes_range
    return MapBytes(
        reading.map, reading.go_type, reading.entries, reading.high_water, p.live_bytes, lo, hi, owned, owned_from
    )


@dataclass(frozen=True)
class Attributed:
    """One sample with what the model attributes to the checked maps in it."""

    sample: HeapSample
    maps: tuple[MapBytes, ...]

    @property
    def total(self) -> int:
        return sum(m.total for m in self.maps)

    @property
    def low(self) -> int:
        return sum(m.slots_low + m.owned for m in self.maps)

    @property
    def high(self) -> int:
        return sum(m.slots_high + m.owned for m in self.maps)

    @property
    def unexplained(self) -> int:
        return self.sample.live_bytes - self.total


def _attribute(
    samples: Sequence[HeapSample], names: Sequence[str], target: TargetSpec, declared: dict[str, int], *, lax: bool
) -> list[Attributed] | str:
    """Each sample with its maps' bytes; ``lax``: a map not registered yet (at deploy) is empty."""
    out = []
    for sample in samples:
        found = probed_maps(sample, names)
        if isinstance(found, str):
            if not lax:
                return found
            found = ()
        go = _go_minor(sample, target)
        out.append(Attributed(sample, tuple(map_bytes(r, go, declared) for r in found)))
    return out


@dataclass(frozen=True)
class Comparison:
    """One replica at one point against ``since``, before the floor is known."""

    point: str
    replica: int
    since: Attributed
    here: Attributed
    since_unexplained: tuple[int, ...]
    here_unexplained: tuple[int, ...]
    since_all: tuple[Attributed, ...]

    @property
    def observed(self) -> int:
        return self.here.sample.live_bytes - self.since.sample.live_bytes

    @property
    def predicted(self) -> int:
        return self.here.total - self.since.total

    @property
    def left_over(self) -> int:
        return self.observed - self.predicted

    @property
    def maps_unchanged(self) -> bool:
        then = {m.map: (m.entries, m.high_water) for m in self.since.maps}
        return all(then.get(m.map, (0, 0)) == (m.entries, m.high_water) for m in self.here.maps)


def _compare(point: str, replica: int, since: list[Attributed], here: list[Attributed]) -> Comparison:
    since_u = [a.unexplained for a in since]
    here_u = [a.unexplained for a in here]
    return Comparison(
        point,
        replica,
        since[median_index(since_u)],
        here[median_index(here_u)],
        tuple(since_u),
        tuple(here_u),
        tuple(since),
    )


def _row(check: ModelCheck, c: Comparison, floor: Floor) -> dict[str, Any]:
    tolerance = check.tolerance.fraction
    relative = round(tolerance * max(c.here.total, 1))
    allowed = max(relative, floor.bytes)
    low = c.here.low - c.since.high
    high = c.here.high - c.since.low
    ok = low - allowed <= c.observed <= high + allowed
    sources = sorted({str(s.source) for s in (c.since.sample, c.here.sample)})
    new_entries = sum(m.entries for m in c.here.maps) - sum(m.entries for m in c.since.maps)
    row: dict[str, Any] = {
        "point": c.point,
        "since": check.since or "deploy",
        "replica": c.replica,
        "map": ", ".join(m.map or '""' for m in c.here.maps),
        "go_type": "; ".join(m.go_type for m in c.here.maps),
        "maps": [
            {
                "map": m.map,
                "go_type": m.go_type,
                "entries": [next((t.entries for t in c.since.maps if t.map == m.map), 0), m.entries],
                "high_water": m.high_water,
                "slot_bytes": m.slots,
                "owned_bytes": m.owned,
                "owned_from": m.owned_from,
            }
            for m in c.here.maps
        ],
        "entries": [sum(m.entries for m in c.since.maps), sum(m.entries for m in c.here.maps)],
        "high_water": sum(m.high_water for m in c.here.maps),
        "map_predicted_bytes": c.here.total,
        "attributed_bytes": c.predicted,
        "slot_bytes": sum(m.slots for m in c.here.maps) - sum(m.slots for m in c.since.maps),
        "owned_bytes": sum(m.owned for m in c.here.maps) - sum(m.owned for m in c.since.maps),
        "predicted_bytes": c.predicted,  # the heap growth the model predicts: the maps', nothing else
        "predicted_range": [low, high],
        "observed_bytes": c.observed,
        "left_over_bytes": c.left_over,
        "relative_bytes": relative,
        "floor": floor.to_json(),
        "tolerance_bytes": allowed,
        "repeats": [len(c.since_unexplained), len(c.here_unexplained)],
        "sources": sources,
        "approximate": c.since.sample.approximate or c.here.sample.approximate,
        "within_tolerance": ok,
    }
    if not ok and new_entries > 0 and c.left_over / new_entries > PINNING_PER_ENTRY_BYTES:
        row["note"] = (
            f"{c.left_over / new_entries:,.0f} B left over per new entry. If the entries hold it: values that are "
            "substrings or sub-slices of a larger buffer pin all of it (mapprobe counts len and cap only), and "
            "pointees and strings need WithEntries or owns:; otherwise the service holds it outside its maps"
        )
    return row


def check_service_model(check: ModelCheck, scenario: Scenario, journal: Journal) -> CheckResult:
    target = scenario.target(check.target)
    since = check.since or "deploy"
    declared = dict(check.owns)
    rows: list[dict[str, Any]] = []
    verdict = Verdict.PASS
    for point in check.at:
        comparisons: list[Comparison] = []
        for replica in range(target.replicas):
            base = journal.replica_samples(target.name, since, replica)
            here = journal.replica_samples(target.name, point, replica)
            missing: str | None = None
            if not base or not here:
                missing = f"no heap sample at {since} or {point}"
            elif any(s.source == HeapSource.NONE for s in (*base, *here)):
                missing = f"the service serves no live-heap figure ({NO_HEAP_SOURCE_FIX})"
            if missing is None:
                then = _attribute(base, check.map, target, declared, lax=since == "deploy")
                now = _attribute(here, check.map, target, declared, lax=False)
                if isinstance(now, str) or isinstance(then, str):
                    missing = now if isinstance(now, str) else str(then)
                else:
                    comparisons.append(_compare(point, replica, then, now))
            if missing is not None:
                verdict = worst(verdict, Verdict.INCONCLUSIVE)
                rows.append({"point": point, "replica": replica, "missing": missing})
        for c in comparisons:
            idle = [o.left_over for o in comparisons if o is not c and o.maps_unchanged]
            floor = floor_of(
                sources=[c.since.sample.source, c.here.sample.source],
                since_unexplained=c.since_unexplained,
                point_unexplained=c.here_unexplained,
                idle_left_overs=idle,
                # The headroom before the change: a leak raises the goal with the heap, so the point's own
                # headroom would excuse the very growth the check is for.
                gc_headrooms=[a.sample.gc_headroom_bytes for a in c.since_all if a.sample.approximate],
            )
            row = _row(check, c, floor)
            rows.append(row)
            if not row["within_tolerance"]:
                verdict = worst(verdict, Verdict.FAIL)
    evidence = {"target": target.name, "map": list(check.map), "since": since, "samples": rows}
    return CheckResult(check.name, "model", verdict, _summary(target.name, since, rows), evidence)


def _summary(target: str, since: str, rows: list[dict[str, Any]]) -> str:
    measured = [r for r in rows if "observed_bytes" in r]
    if not measured:
        missing = "; ".join(sorted({r["missing"] for r in rows if "missing" in r}))
        return f"{target}: {missing or 'no heap samples'}"
    row = max(measured, key=lambda r: abs(r["left_over_bytes"]) - r["tolerance_bytes"])
    label = f"map '{row['map']}'" if row["map"] and "," not in row["map"] else f"maps {row['map']}"
    floor = row["floor"]
    allowed = (
        f"allowed {row['tolerance_bytes']:,} B: the noise floor ({floor['decided_by']})"
        if floor["bytes"] >= row["relative_bytes"]
        else f"allowed {row['tolerance_bytes']:,} B: the tolerance (floor {floor['bytes']:,} B)"
    )
    owned = f", {row['owned_bytes']:,} B of it owned by the entries" if row["owned_bytes"] else ""
    text = (
        f"{target} {label} ({row['go_type']}): heap grew {row['observed_bytes']:,} B from {since} to "
        f"{row['point']} (replica {row['replica']}); the model attributes {row['attributed_bytes']:,} B to "
        f"the map{'s' if ',' in row['map'] else ''}{owned} ({row['entries'][0]} -> {row['entries'][1]} entries), "
        f"{row['left_over_bytes']:,} B left over ({allowed}; {'/'.join(row['sources'])} samples)"
    )
    return text + (f". {row['note']}" if "note" in row else "")
