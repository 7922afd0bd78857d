"""Which runs in the trend store are regressions (pure).

A run is compared with the runs of the same scenario on the same machine that
started before it: the median of the latest HISTORY of them (at least
MIN_HISTORY; fewer and the metric is not judged). It is flagged when

- ``p99_s`` is more than 25 % above that median (client p99 over the load);
- ``heap_observed_bytes`` (the model checks' live heap) is more than 10 % above;
- ``heap_peak_bytes`` (peak live heap over the run) is more than 25 % above;
- ``throughput_wps`` (map writes/s) is more than 20 % below;
- or one of its ``baseline`` checks failed (Mann-Whitney U against earlier runs).

The thresholds (THRESHOLDS) are relative so one table serves every scenario;
the latency and throughput ones are wide because run-to-run noise on a shared
2-core machine is ±10 %, the heap one narrower because heap is near exact.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.trends.store import CheckRow, RunRow

HISTORY = 5
MIN_HISTORY = 2


@dataclass(frozen=True)
class Threshold:
    metric: str
    worse: str
    """"higher" or "lower"."""
    relative: float
    label: str


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("p99_s", "higher", 0.25, "client p99"),
    Threshold("heap_observed_bytes", "higher", 0.10, "live heap (model checks)"),
    Threshold("heap_peak_bytes", "higher", 0.25, "peak live heap"),
    Threshold("throughput_wps", "lower", 0.20, "map writes/s"),
)


@dataclass(frozen=True)
class Flag:
    run_id: str
    metric: str
    value: float | None
    reference: float | None
    """Median of the earlier runs (None for a failed baseline check)."""
    change: float | None
    """(value − reference) / reference."""
    threshold: float | None
    message: str


def flags_for(run: RunRow, earlier: Sequence[RunRow], checks: Sequence[CheckRow] = ()) -> list[Flag]:
    """The regressions of ``run`` against ``earlier`` runs (same scenario and machine, oldest first)."""
    flags = []
    history = list(earlier)[-HISTORY:]
    for t in THRESHOLDS:
        value = getattr(run, t.metric)
        past = [getattr(r, t.metric) for r in history if getattr(r, t.metric) is not None]
        if value is None or len(past) < MIN_HISTORY:
            continue
        reference = statistics.median(past)
        if reference == 0:
            continue
        change = (value - reference) / reference
        worse = change > t.relative if t.worse == "higher" else change < -t.relative
        if worse:
            flags.append(
                Flag(
                    run.run_id,
                    t.metric,
                    value,
                    reference,
                    change,
                    t.relative,
                    f"{t.label} {value:.4g} is {abs(change):.0%} {'above' if change > 0 else 'below'} the median "
                    f"{reference:.4g} of the {len(past)} previous runs (threshold {t.relative:.0%})",
                )
            )
    for check in checks:
        if check.kind == "baseline" and check.verdict == "fail":
            flags.append(Flag(run.run_id, f"baseline:{check.name}", None, None, None, None, check.summary))
    return flags


def regressions(runs: Sequence[RunRow], checks: dict[str, list[CheckRow]]) -> dict[str, list[Flag]]:
    """Flags per run id, each run judged against the earlier runs of its scenario on its machine."""
    by_group: dict[tuple[str, str], list[RunRow]] = {}
    out: dict[str, list[Flag]] = {}
    for run in sorted(runs, key=lambda r: r.started):
        group = by_group.setdefault((run.scenario, run.machine), [])
        flags = flags_for(run, group, checks.get(run.run_id, []))
        if flags:
            out[run.run_id] = flags
        group.append(run)
    return out
