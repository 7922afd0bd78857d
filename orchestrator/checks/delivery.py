"""Did the load deliver what the scenario designed? One run-level result, beside the checks.

What is designed, per phase:

- a phase with a ``rate`` (the phase's, else ``load.rate``; mapquake's users only) designs
  ``rate x users x seconds`` requests, a request being one user task (one batch of ``batch`` writes,
  sent as one call per replica it touches). The seconds counted leave out the phase's start when it
  adds users: Locust moves users on a once-a-second shape tick, and spawns them at ``spawn_rate``;
- a phase without a rate is a closed loop: its users run flat out, so it designs no amount. What it
  delivered and its generators' CPU are shown, not judged: a flat-out worker is busy by design
  (the quickstart's one worker measured 91-100 % of a core all through a healthy run);
- a phase with no users designs nothing.

The run is inconclusive when a phase with a rate delivered less than ``load.delivery.min_fraction``
of its design, or when a worker's mean CPU over such a phase was above
``load.delivery.max_generator_cpu`` (its pacing and its latencies are then the generator's, not the
targets'). The result names the numbers and the fix. Pure: the workers' summaries come in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.checks.verdict import DELIVERY_KIND, CheckResult, Verdict
from orchestrator.scenario.spec import Scenario
from workloads.plan import PhaseDelivery, WorkerSummary

CHECK_NAME = "load-delivery"
SHAPE_TICK_S = 1.0
"""Locust ticks the load shape once a second: a phase's new users may start up to this late."""
BUSY_WAIT_SHARE = 0.3
"""A worker whose main thread waited for a CPU this share of a phase was held back by a busy machine
(a quiet 2-core machine running the quickstart: about 0.24; picks the fix named, not the verdict)."""
ERROR_SHARE = 0.1
"""A phase whose requests failed this often was held back by its targets (named in the fix)."""
LATE_START_S = 1.0
"""A phase whose first request came this much later than its users' start was started late (the fix
names it when the rest of the phase delivered its rate)."""


@dataclass(frozen=True)
class PhaseDesign:
    """What the scenario designs for one phase's load."""

    phase: str
    users: int
    rate_per_user: float | None
    """Requests (user tasks) per second per user; None: a closed loop, or no users."""
    duration_s: float
    counted_s: float
    """The seconds the design counts: the duration less the users' start (tick and spawn ramp)."""

    @property
    def designed(self) -> float | None:
        """Requests designed over ``counted_s``; None when the phase designs no amount."""
        if self.rate_per_user is None or self.users == 0 or self.counted_s <= 0:
            return None
        return self.rate_per_user * self.users * self.counted_s


def designed_phases(scenario: Scenario) -> list[PhaseDesign]:
    """Each phase's design, as run/loadplan.py hands it to Locust."""
    load = scenario.load
    out: list[PhaseDesign] = []
    previous = 0
    for phase in scenario.phases:
        users = load.users if phase.users is None else phase.users
        rate = None if load.locustfile is not None else phase.rate or load.rate
        added = max(0, users - previous)
        lag = SHAPE_TICK_S + added / load.spawn_rate / 2 if added else 0.0
        out.append(
            PhaseDesign(
                phase=phase.name,
                users=users,
                rate_per_user=rate if users else None,
                duration_s=phase.duration_s,
                counted_s=max(0.0, phase.duration_s - lag),
            )
        )
        previous = users
    return out


def _worker_row(index: int, p: PhaseDelivery) -> dict[str, Any]:
    wait = p.wait_share
    return {
        "worker": index,
        "cpu_mean": round(p.cpu_share, 3),
        "cpu_peak": round(p.cpu_peak, 3),
        "cpu_wait": None if wait is None else round(wait, 3),
        "requests": p.tasks,
        "first_request_s": p.first_task_s,
    }


def _fix(scenario: Scenario, design: PhaseDesign, workers: list[dict[str, Any]], fraction: float, errors: float) -> str:
    """The likeliest fix for a phase that fell short, from what its workers measured."""
    load, limit = scenario.load, scenario.load.delivery.max_generator_cpu.fraction
    starts = [w["first_request_s"] for w in workers if w.get("first_request_s") is not None]
    allowed = design.duration_s - design.counted_s
    if starts and min(starts) > allowed + LATE_START_S and design.rate_per_user:
        first = min(starts)
        since = fraction * design.counted_s / max(design.duration_s - first, 1e-9)
        if since >= load.delivery.min_fraction:
            return (
                f"the load started late: its first request came {first:.1f} s into the phase (its users' "
                f"start allows {allowed:.1f} s), then it delivered {since:.0%} of the rate; see the workers' "
                "logs for what held them, or open with a short warm-up phase"
            )
    busiest = max(workers, key=lambda w: w["cpu_mean"])
    waits = [w["cpu_wait"] for w in workers if w["cpu_wait"] is not None]
    if busiest["cpu_mean"] >= limit:
        more = max(load.workers + 1, math.ceil(load.workers / max(fraction, 0.05)))
        return (
            f"worker {busiest['worker']} was CPU-bound ({busiest['cpu_mean']:.0%} of a core): more workers "
            f"(load.workers: {load.workers} -> {more})"
        )
    if waits and max(waits) >= BUSY_WAIT_SHARE:
        where = (
            "raise the Locust workers' CPU request (kubernetes.locust.worker.requests.cpu, now "
            f"{scenario.kubernetes.locust_worker.requests.get('cpu', 'none')})"
            if scenario.backend == "kubernetes"
            else "run it on a quieter machine"
        )
        return (
            f"the generator waited for a CPU {max(waits):.0%} of the phase (other processes had the cores): "
            f"{where}, or more workers (load.workers)"
        )
    if errors >= ERROR_SHARE:
        return f"{errors:.0%} of its requests failed: the targets refused or timed out (see the errors)"
    per_user = fraction * (design.rate_per_user or 0)
    wait = f", waited for one {max(waits):.0%}" if waits else ""
    return (
        f"the targets answered too slowly for {design.rate_per_user:g} requests/s per user (a user sends one "
        f"at a time; it reached {per_user:.3g}/s, while worker {busiest['worker']} used "
        f"{busiest['cpu_mean']:.0%} of a core{wait}): more users at a lower rate each (load.users, load.rate)"
    )


def judge_delivery(scenario: Scenario, summaries: Sequence[WorkerSummary]) -> CheckResult:
    """The load's delivery per phase against its design, and its generators' CPU."""
    delivery = scenario.load.delivery
    limit, margin = delivery.max_generator_cpu.fraction, delivery.min_fraction
    designs = designed_phases(scenario)
    ordered = sorted(summaries, key=lambda s: s.worker_index)
    measured = bool(ordered) and all(len(s.phases) == len(designs) for s in ordered)
    evidence: dict[str, Any] = {
        "min_fraction": margin,
        "max_generator_cpu": limit,
        "workers": len(ordered),
        "phases": [],
    }
    if not measured:
        paced = [d.phase for d in designs if d.designed is not None]
        why = "the load's workers reported no per-phase counts"
        if not paced:
            return CheckResult(
                CHECK_NAME, DELIVERY_KIND, Verdict.PASS, f"closed loop, nothing designed; {why}", evidence
            )
        return CheckResult(
            CHECK_NAME, DELIVERY_KIND, Verdict.INCONCLUSIVE, f"{why}: cannot tell the rate of {', '.join(paced)}",
            evidence,
        )  # fmt: skip
    budgeted = scenario.load.max_ops is not None and any(s.stopped_by == "max_ops" for s in ordered)
    problems: list[str] = []
    fixes: dict[str, list[str]] = {}
    """Each fix, with the phases it is for (phases that fell short alike get one fix)."""
    judged: list[str] = []
    peak_cpu = 0.0
    for i, design in enumerate(designs):
        got = [s.phases[i] for s in ordered]
        # A locustfile's users count no tasks of ours (their own wait_time): their requests are the load.
        delivered = sum(p.requests if scenario.load.locustfile else p.tasks for p in got)
        sent = sum(p.requests for p in got)
        errors = sum(p.errors for p in got)
        workers = [_worker_row(s.worker_index, p) for s, p in zip(ordered, got, strict=True)]
        row: dict[str, Any] = {
            "phase": design.phase,
            "users": design.users,
            "rate_per_user": design.rate_per_user,
            "seconds_counted": round(design.counted_s, 3),
            "designed_requests": None if design.designed is None else round(design.designed),
            "delivered_requests": delivered,
            "requests_sent": sent,
            "writes": sum(p.writes for p in got),
            "errors": errors,
            "workers": workers,
        }
        designed = design.designed
        if designed is None:
            if not design.users:
                row["judged"] = "no users"
            elif design.rate_per_user is None:
                row["judged"] = "closed loop: no designed rate"
            else:  # the whole phase is the users' start (shape tick and ramp)
                row["judged"] = "too short to judge: its users start on Locust's one-second tick"
            evidence["phases"].append(row)
            continue
        peak_cpu = max([peak_cpu, *(w["cpu_mean"] for w in workers)])
        fraction = round(delivered / designed, 3)
        row["delivered_fraction"] = round(fraction, 3)
        saturated = [w for w in workers if w["cpu_mean"] > limit]
        row["short"] = fraction < margin and not budgeted
        row["saturated_workers"] = [w["worker"] for w in saturated]
        evidence["phases"].append(row)
        judged.append(f"{design.phase} {fraction:.0%}")
        if row["short"]:
            problems.append(
                f"{design.phase} delivered {delivered:,} of {designed:,.0f} designed requests ({fraction:.0%}, "
                f"margin {margin:.0%})"
            )
            fixes.setdefault(_fix(scenario, design, workers, fraction, errors / max(sent, 1)), []).append(design.phase)
        for w in saturated:
            problems.append(
                f"worker {w['worker']} was saturated in {design.phase} ({w['cpu_mean']:.0%} of a core, limit "
                f"{limit:.0%})"
            )
            more = max(scenario.load.workers + 1, math.ceil(scenario.load.workers * w["cpu_mean"] / limit))
            fixes.setdefault(f"more workers (load.workers: {scenario.load.workers} -> {more})", []).append(design.phase)
    evidence["fixes"] = [{"fix": fix, "phases": sorted(set(phases))} for fix, phases in fixes.items()]
    if problems:
        said = [f"{fix} ({', '.join(dict.fromkeys(phases))})" for fix, phases in fixes.items()]
        summary = "the load was not delivered as designed: " + "; ".join(problems) + ". Fix: " + "; ".join(said)
        return CheckResult(CHECK_NAME, DELIVERY_KIND, Verdict.INCONCLUSIVE, summary, evidence)
    total_writes = sum(r["writes"] for r in evidence["phases"])
    top = max((w["cpu_mean"] for r in evidence["phases"] for w in r["workers"]), default=0.0)
    if not judged:
        summary = (
            f"closed loop (no rate): nothing designed to compare; delivered {total_writes:,} writes; generator "
            f"CPU up to {top:.0%} of a core (flat out by design, not judged)"
        )
    else:
        summary = (
            f"phases with a rate delivered at least {margin:.0%} of their design ({', '.join(judged)}); generator "
            f"CPU at most {peak_cpu:.0%} of a core there (limit {limit:.0%})"
        )
        if budgeted:
            summary += "; the op budget (load.max_ops) ended the load early, so shortfalls are not judged"
    return CheckResult(CHECK_NAME, DELIVERY_KIND, Verdict.PASS, summary, evidence)
