"""The model check on a user's service: its heap growth against what its mapprobe maps explain.

A service holds more than its maps (buffers, caches, goroutines), so the check never compares the
whole heap with the model. It compares the live heap's growth between two points (``since``, by
default the deploy baseline, and each ``at`` point) with the growth the model predicts for the one
map the check names, from the entries and high-water mark the service itself reports through
mapprobe. What the model does not attribute to the map is "left over"; the check fails when the
left-over exceeds the tolerance, taken of the map's predicted size at the point (so a map that
did not change still has room for the service's own noise).

Samples without mapprobe's GC handler are approximate (go_gc_heap_live_bytes: marked live at the
service's last GC); their tolerance widens by APPROXIMATE_EXTRA (docs/your-service.md).
"""

from __future__ import annotations

from typing import Any

from orchestrator.checks.verdict import CheckResult, Verdict, worst
from orchestrator.journal import HeapSample, Journal, MapReading
from orchestrator.model.predict import predict
from orchestrator.scenario.spec import ModelCheck, Scenario, TargetSpec

APPROXIMATE_EXTRA = 0.25
"""Added to the tolerance (as a fraction of the map's predicted size) when a sample is approximate."""


def _go_minor(sample: HeapSample, target: TargetSpec) -> str:
    """The Go version the service runs ("go1.26.8" -> "1.26"), else the target's."""
    version = sample.go_version.removeprefix("go")
    parts = version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]) else target.go


def probed_map(sample: HeapSample, name: str | None) -> MapReading | str:
    """The reading of map ``name`` (the only map when None), or why there is none."""
    if not sample.maps:
        return "the service serves no mapprobe map (register it with mapprobe.Register)"
    if name is None:
        if len(sample.maps) == 1:
            return sample.maps[0]
        labels = ", ".join(m.map or '""' for m in sample.maps)
        return f"the service registers {len(sample.maps)} maps ({labels}); name one with map:"
    for reading in sample.maps:
        if reading.map == name:
            return reading
    return f"the service has no mapprobe map '{name}' (its maps: {', '.join(m.map or '' for m in sample.maps)})"


def _bytes(reading: MapReading, go: str) -> tuple[int, int, int]:
    """The model's (expected, low, high) live bytes of the map as read."""
    if reading.entries == 0 and reading.high_water == 0:
        return 0, 0, 0
    p = predict(reading.go_type, reading.entries, go_version=go, high_water=max(reading.entries, reading.high_water))
    return p.live_bytes, p.live_bytes_range[0], p.live_bytes_range[1]


def check_service_model(check: ModelCheck, scenario: Scenario, journal: Journal) -> CheckResult:
    target = scenario.target(check.target)
    since = check.since or "deploy"
    rows: list[dict[str, Any]] = []
    verdict = Verdict.PASS
    for point in check.at:
        for replica in range(target.replicas):
            base = journal.replica_samples(target.name, since, replica)
            here = journal.replica_samples(target.name, point, replica)
            if not base or not here:
                verdict = worst(verdict, Verdict.INCONCLUSIVE)
                rows.append({"point": point, "replica": replica, "missing": f"no heap sample at {since} or {point}"})
                continue
            then, now = probed_map(base[0], check.map), probed_map(here[0], check.map)
            if isinstance(now, str) or (isinstance(then, str) and since != "deploy"):
                verdict = worst(verdict, Verdict.INCONCLUSIVE)
                rows.append({"point": point, "replica": replica, "missing": now if isinstance(now, str) else then})
                continue
            go = _go_minor(here[0], target)
            now_e, now_lo, now_hi = _bytes(now, go)
            then_e, then_lo, then_hi = (0, 0, 0) if isinstance(then, str) else _bytes(then, go)
            predicted = now_e - then_e
            low, high = now_lo - then_hi, now_hi - then_lo
            observed = here[0].live_bytes - base[0].live_bytes
            approximate = here[0].approximate or base[0].approximate
            tolerance = check.tolerance.fraction + (APPROXIMATE_EXTRA if approximate else 0.0)
            slack = round(tolerance * max(now_e, 1))
            ok = low - slack <= observed <= high + slack
            rows.append(
                {
                    "point": point,
                    "since": since,
                    "replica": replica,
                    "map": now.map,
                    "go_type": now.go_type,
                    "entries": [0 if isinstance(then, str) else then.entries, now.entries],
                    "high_water": now.high_water,
                    "map_predicted_bytes": now_e,
                    "attributed_bytes": predicted,
                    "predicted_bytes": predicted,  # the heap growth the model predicts: the map's, nothing else
                    "predicted_range": [low, high],
                    "observed_bytes": observed,
                    "left_over_bytes": observed - predicted,
                    "tolerance_bytes": slack,
                    "approximate": approximate,
                    "within_tolerance": ok,
                }
            )
            if not ok:
                verdict = worst(verdict, Verdict.FAIL)
    measured = [r for r in rows if "observed_bytes" in r]
    if measured:
        row = max(measured, key=lambda r: abs(r["left_over_bytes"]) - r["tolerance_bytes"])
        label = f"map '{row['map']}'" if row["map"] else "its map"
        summary = (
            f"{target.name} {label} ({row['go_type']}): heap grew {row['observed_bytes']:,} B from {since} to "
            f"{row['point']} (replica {row['replica']}); the model attributes {row['attributed_bytes']:,} B to "
            f"the map ({row['entries'][0]} -> {row['entries'][1]} entries), {row['left_over_bytes']:,} B left over "
            f"(tolerance {row['tolerance_bytes']:,} B{', approximate samples' if row['approximate'] else ''})"
        )
    else:
        missing = "; ".join(sorted({r["missing"] for r in rows if "missing" in r}))
        summary = f"{target.name}: {missing or 'no heap samples'}"
    evidence = {"target": target.name, "map": check.map, "since": since, "samples": rows}
    return CheckResult(check.name, "model", verdict, summary, evidence)
