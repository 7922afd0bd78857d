"""Run records, journals and series built in code, for the report, trend and check tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.checks.evaluate import RangeSeries
from orchestrator.checks.verdict import CheckResult, Verdict, overall
from orchestrator.journal import Event, HeapSample, Journal
from orchestrator.reporting.report import RunRecord
from orchestrator.scenario.spec import Scenario, build

T0 = 1_800_000_000.0


def scenario(
    *, store: str = "deleteretain", user: str = "DeleteChurnUser", checks: Sequence[dict[str, Any]] = ()
) -> Scenario:
    data = {
        "apiVersion": "mapquake/v1",
        "kind": "Scenario",
        "name": "unit",
        "targets": [{"name": "kv", "store": store, "replicas": 2}],
        "load": {"user": user, "keys": {"space": 1000}},
        "phases": [
            {"name": "fill", "duration": "10s"},
            {"name": "cut", "duration": "10s"},
            {"name": "heal", "duration": "10s"},
        ],
        "checks": list(checks)
        or [
            {"name": "heap", "model": "live_heap", "target": "kv", "at": ["heal.end"]},
            {"name": "p99", "promql": "p99", "below": 0.01, "during": ["heal"]},
            {"name": "alive", "crash": "kv"},
        ],
    }
    return build(data, source="unit.yaml")


def journal(*, faults: bool = True) -> Journal:
    """Phases fill [T0+1, T0+11), cut [T0+11, T0+21), heal [T0+21, T0+31); a fault in cut; heap samples."""
    j = Journal()
    j.started_mono, j.started_wall = 100.0, T0
    events = [("note", "run-start", 0.0, {})]
    for i, name in enumerate(("fill", "cut", "heal")):
        events.append(("phase-start", name, 1.0 + 10 * i, {"index": i}))
        events.append(("phase-end", name, 11.0 + 10 * i, {"index": i}))
    if faults:
        events += [
            ("fault-applied", "partition-0", 12.0, {"shape": "halves"}),
            ("fault-healed", "partition-0", 20.0, {"shape": "halves"}),
        ]
    for kind, name, t, data in sorted(events, key=lambda e: e[2]):
        j.events.append(Event(kind, name, 100.0 + t, T0 + t, data))
    for replica in (0, 1):
        for point, wall, live, entries in (("deploy", 0.5, 600_000, 0), ("heal.end", 31.0, 1_650_000, 1000)):
            j.add_sample(
                HeapSample(
                    live_bytes=live,
                    entries=entries,
                    high_water=entries,
                    goroutines=8,
                    go_version="go1.26.8",
                    go_type="map[string][32]byte",
                ).placed(target="kv", replica=replica, point=point, wall=T0 + wall, settled=True)
            )
    return j


def results(verdicts: Sequence[Verdict] = (Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE)) -> list[CheckResult]:
    """The first len(verdicts) of: a model check (heap), a promql check (p99), a crash check (alive)."""
    v = [*verdicts, Verdict.PASS, Verdict.PASS, Verdict.PASS]
    model_rows = [
        {
            "point": "heal.end",
            "replica": r,
            "entries_expected": 1000,
            "entries_observed": 1000,
            "predicted_bytes": 1_000_000,
            "predicted_container_bytes": 900_000,
            "predicted_range": [980_000, 1_030_000],
            "keys_and_payload_bytes": 100_000,
            "observed_bytes": 1_050_000,
            "error": 0.05,
            "within_tolerance": True,
        }
        for r in (0, 1)
    ]
    made = [
        CheckResult(
            "heap",
            "model",
            v[0],
            "heap as the model says",
            {"go_type": "map[string][32]byte", "tolerance": 0.05, "samples": model_rows},
        ),
        CheckResult("p99", "promql", v[1], "p99 reached 0.02 <bound> & 'quoted'", {"query": "p99", "max": 0.02}),
        CheckResult("alive", "crash", v[2], "could not tell", {"crashes": []}),
    ]
    return made[: len(verdicts)]


def record(report_dir: Path, *, results_: list[CheckResult] | None = None, sc: Scenario | None = None) -> RunRecord:
    res = results() if results_ is None else results_
    verdict = overall(res)
    return RunRecord(
        run_id="abc123",
        scenario=sc or scenario(),
        verdict=verdict,
        exit_code={Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 4}[verdict],
        reason="completed",
        results=res,
        journal=journal(),
        report_dir=report_dir,
        duration_s=33.5,
        expected_entries={"per_target": {"kv": [1000, 1000]}},
        load={"writes": 5000, "errors": 0},
    )


def series() -> dict[str, Any]:
    """series.json data shaped like series.collect's, with a heap ramp, latency, throughput and backlog."""
    ts = [T0 + t for t in range(0, 32)]

    def line(labels: dict[str, str], f: Any) -> dict[str, Any]:
        return {"labels": labels, "points": [[t, f(t - T0)] for t in ts]}

    def entry(title: str, unit: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
        return {"query": title, "unit": unit, "title": title, "lines": lines}

    heap = [
        line({"target": "kv", "replica": str(r)}, lambda s, r=r: 600_000 + 35_000 * min(s, 30) + r * 1000)
        for r in (0, 1)
    ]
    return {
        "schema_version": 1,
        "start": T0,
        "end": T0 + 31,
        "step": 1.0,
        "rate_window": "4s",
        "series": {
            "heap_live": entry("live", "bytes", heap),
            "heap_alloc": entry("alloc", "bytes", [line(h["labels"], lambda s: 900_000 + 40_000 * s) for h in heap]),
            "latency_p50": entry("p50", "seconds", [line({}, lambda s: 0.001)]),
            "latency_p90": entry("p90", "seconds", [line({}, lambda s: 0.002 + 0.0001 * s)]),
            "latency_p99": entry("p99", "seconds", [line({}, lambda s: 0.005 + (0.01 if 12 <= s < 20 else 0))]),
            "writes_per_s": entry("w", "1/s", [line({}, lambda s: 1000.0 if s < 12 or s >= 20 else 200.0)]),
            "requests_per_s": entry("r", "1/s", [line({}, lambda s: 10.0)]),
            "backlog": entry(
                "b",
                "ops",
                [
                    line(
                        {"target": "kv", "replica": "0", "peer": "kv-1"},
                        lambda s: 50.0 * (s - 12) if 12 <= s < 20 else 0.0,
                    )
                ],
            ),
            "goroutines": entry("g", "goroutines", [line(h["labels"], lambda s: 12.0) for h in heap]),
        },
        "summary": {
            "load_start": T0 + 1,
            "load_end": T0 + 31,
            "p50_s": 0.001,
            "p90_s": 0.002,
            "p99_s": 0.0081,
            "writes_per_s": 800.0,
            "requests_per_s": 10.0,
        },
        "errors": {},
    }


@dataclass
class FakeProm:
    """A RangeQuerier answering every query with the same series; records what it was asked."""

    series: list[RangeSeries]

    def __post_init__(self) -> None:
        self.asked: list[tuple[str, float, float, float]] = []

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]:
        self.asked.append((expr, start, end, step))
        return [RangeSeries(s.labels, [(t, v) for t, v in s.values if start <= t <= end]) for s in self.series]
