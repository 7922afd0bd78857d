"""The ``recovery`` check: after each heal, an expression falls below its bound within a deadline.

``{recovery: EXPR, below: B, within: 10s}`` is judged once per fault heal the
journal records (events of kind ``fault-healed``, at their wall time ``h``).
Prometheus is range-queried from ``h`` to ``h + within`` at the scrape
interval; at each timestamp the *highest* value over the expression's series
counts (every replica must be back). The expression has recovered at the first
timestamp from which that value stays below ``B`` for the rest of the observed
window. Per heal:

- pass: recovered at or before ``h + within``;
- fail: Prometheus has samples up to the deadline and it never recovered;
- inconclusive: no samples after the heal, or the samples stop before the
  deadline without a recovery (the run ended early: stale data is never a pass).

No heal in the run at all is inconclusive: there was nothing to recover from.
The worst verdict over the heals wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from orchestrator.checks.verdict import CheckResult, Verdict, worst
from orchestrator.journal import Event, Journal
from orchestrator.scenario.spec import RecoveryCheck, Scenario

HEAL_EVENT = "fault-healed"


@dataclass(frozen=True)
class Recovery:
    """What one heal showed: when the expression was back below the bound, if it was."""

    verdict: Verdict
    recovered_at: float | None
    last_sample: float | None
    points: list[tuple[float, float]]
    """(unix s, highest value over the series) from the heal to the deadline."""


def worst_per_timestamp(series_values: list[list[tuple[float, float]]]) -> list[tuple[float, float]]:
    """The highest non-NaN value at each timestamp over several series, in time order (pure)."""
    highest: dict[float, float] = {}
    for values in series_values:
        for t, v in values:
            if math.isnan(v):
                continue
            highest[t] = max(v, highest.get(t, v))
    return sorted(highest.items())


def judge(points: list[tuple[float, float]], *, healed: float, deadline: float, below: float, step: float) -> Recovery:
    """Judge one heal from the per-timestamp worst values (pure).

    Samples within half a step of the deadline count as reaching it: the range
    query's grid need not land on the deadline exactly.
    """
    window = [(t, v) for t, v in points if healed <= t <= deadline + step / 2]
    if not window:
        return Recovery(Verdict.INCONCLUSIVE, None, None, window)
    recovered_at: float | None = None
    for t, v in window:
        if v < below:
            if recovered_at is None:
                recovered_at = t
        else:
            recovered_at = None
    last = window[-1][0]
    if recovered_at is not None and recovered_at <= deadline + step / 2:
        return Recovery(Verdict.PASS, recovered_at, last, window)
    if last >= deadline - step / 2:
        return Recovery(Verdict.FAIL, None, last, window)
    return Recovery(Verdict.INCONCLUSIVE, None, last, window)


def heals(journal: Journal) -> list[Event]:
    return [e for e in journal.events if e.kind == HEAL_EVENT]


def check_recovery(check: RecoveryCheck, scenario: Scenario, journal: Journal, facts: Any) -> CheckResult:
    """Evaluate a recovery check (``facts`` is comparator.RunFacts; only its ``prometheus`` is used)."""
    expr = check.expr
    below = float(check.below)
    within_s = check.within.seconds
    step = scenario.scrape_interval_s
    evidence: dict[str, Any] = {"query": expr, "below": below, "within_s": within_s, "heals": []}
    healed = heals(journal)
    if not healed:
        return CheckResult(
            check.name,
            "recovery",
            Verdict.INCONCLUSIVE,
            "no fault was healed in this run: nothing to recover from",
            evidence,
        )
    if facts.prometheus is None:
        return CheckResult(check.name, "recovery", Verdict.INCONCLUSIVE, "Prometheus was not available", evidence)
    verdict = Verdict.PASS
    lines = []
    for event in healed:
        deadline = event.wall + within_s
        series = facts.prometheus.query_range(expr, event.wall, deadline, step)
        outcome = judge(
            worst_per_timestamp([list(s.values) for s in series]),
            healed=event.wall,
            deadline=deadline,
            below=below,
            step=step,
        )
        verdict = worst(verdict, outcome.verdict)
        after = None if outcome.recovered_at is None else round(outcome.recovered_at - event.wall, 3)
        evidence["heals"].append(
            {
                "fault": event.name,
                "fault_data": event.data,
                "healed_at": event.wall,
                "deadline": deadline,
                "recovered_at": outcome.recovered_at,
                "recovered_after_s": after,
                "last_sample": outcome.last_sample,
                "verdict": outcome.verdict.value,
                "series": [[t, v] for t, v in outcome.points],
            }
        )
        if outcome.verdict is Verdict.PASS:
            lines.append(f"{event.name}: below {below:g} {after:g}s after the heal")
        elif outcome.verdict is Verdict.FAIL:
            peak = max(v for _, v in outcome.points)
            lines.append(
                f"{event.name}: not below {below:g} within {within_s:g}s (still {outcome.points[-1][1]:.6g}, "
                f"peak {peak:.6g})"
            )
        elif outcome.last_sample is None:
            lines.append(f"{event.name}: no samples of `{expr}` after the heal")
        else:
            lines.append(f"{event.name}: samples stop {deadline - outcome.last_sample:.1f}s before the deadline")
    return CheckResult(check.name, "recovery", verdict, f"`{expr}`: " + "; ".join(lines), evidence)
