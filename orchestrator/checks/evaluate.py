"""Turn what the run observed into verdicts, one per check of the scenario.

Each check kind has one function here:

- ``model``: the live heap a replica gained since it was deployed (exact, from
  POST /admin/gc samples at phase boundaries) against the reference model's
  prediction for the *designed* container holding the expected distinct keys,
  plus the key strings and value payloads the target built (payload.py);
- ``promql``: an expression evaluated over named phase windows against a bound;
- ``crash``: no target death, or the expected fatal death (racymap);
- ``recovery`` (checks_recovery.py): back under a bound within N s of each heal;
- ``baseline`` (checks_baseline.py): Mann-Whitney U against earlier runs in the trend store.

Missing data (no sample, no series, NaN only) is inconclusive, never a pass.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol, assert_never

from orchestrator.checks.baseline import check_baseline
from orchestrator.checks.noise_floor import floor_of
from orchestrator.checks.payload import PayloadBytes, backlog_bytes, key_bytes, pointee_bytes, value_payload_bytes
from orchestrator.checks.recovery import check_recovery
from orchestrator.checks.service_model import check_service_model
from orchestrator.checks.targettypes import designed_go_type
from orchestrator.checks.verdict import CheckResult, Verdict, worst
from orchestrator.core.errors import MapquakeError
from orchestrator.journal import HeapSample, Journal
from orchestrator.model.predict import predict
from orchestrator.model.rebuild import rebuild_cycle
from orchestrator.scenario.spec import (
    BaselineCheck,
    CheckSpec,
    CrashCheck,
    DesignSpec,
    ModelCheck,
    PromqlCheck,
    RecoveryCheck,
    Scenario,
    TargetSpec,
)
from workloads.keyspace import KEY_LENGTH
from workloads.plan import READING_USERS

FATAL_DEFAULT = "fatal error"
MIN_COVERAGE = 0.8
"""A promql check needs samples at this share of a phase's evaluation points (one per scrape interval)."""


@dataclass(frozen=True)
class RangeSeries:
    labels: dict[str, str]
    values: list[tuple[float, float]]


class RangeQuerier(Protocol):
    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]: ...


class BaselineHistory(Protocol):
    """Earlier runs' samples for baseline checks (the run hands the trend store's; None: no history)."""

    source: str
    """Where the history lives (shown in the evidence), e.g. the trend store's path."""

    def earlier_runs(
        self, *, scenario: str, check: str, query: str, before: float, limit: int
    ) -> list[tuple[str, list[float]]]:
        """(run id, samples) of up to ``limit`` earlier runs of the scenario on this machine, oldest first."""
        ...


@dataclass(frozen=True)
class RunFacts:
    """What the comparator needs besides the journal."""

    expected_keys: dict[str, list[int]]
    """Per target, the distinct keys each replica should hold (from the workers' write counts)."""
    prometheus: RangeQuerier | None
    """None when Prometheus never came up: promql checks are then inconclusive."""
    history: BaselineHistory | None = None
    """Earlier runs for baseline checks; None: every baseline check is inconclusive for want of runs."""


def evaluate(scenario: Scenario, journal: Journal, facts: RunFacts) -> list[CheckResult]:
    results = []
    for check in scenario.checks:
        try:
            results.append(evaluate_check(check, scenario, journal, facts))
        except MapquakeError as err:
            results.append(_inconclusive(check, f"could not evaluate: {err.message}"))
    return results


def evaluate_check(check: CheckSpec, scenario: Scenario, journal: Journal, facts: RunFacts) -> CheckResult:
    """The verdict of one check, by its kind."""
    match check:
        case ModelCheck() if scenario.target(check.target).service is not None:
            return check_service_model(check, scenario, journal)
        case ModelCheck():
            return check_model(check, scenario, journal, facts)
        case PromqlCheck():
            return check_promql(check, scenario, journal, facts)
        case CrashCheck():
            return check_crash(check, scenario, journal, facts)
        case RecoveryCheck():
            return check_recovery(check, scenario, journal, facts)
        case BaselineCheck():
            return check_baseline(check, scenario, journal, facts)
        case _:
            assert_never(check)


def _inconclusive(check: CheckSpec, why: str, **evidence: object) -> CheckResult:
    return CheckResult(check.name, check.kind, Verdict.INCONCLUSIVE, why, dict(evidence))


@dataclass(frozen=True)
class HeapPrediction:
    """What the design says a replica's heap holds at one sample (bytes over the deploy baseline)."""

    expected: int
    low: int
    high: int
    container: int
    """The model's container bytes (structure, slots, boxing)."""
    beside: int
    """Keys, value payloads, owned pointees and replication backlog."""
    cycle: dict[str, object] | None = None
    """A store rebuilt every N deletes: the container's range over one rebuild cycle (model/rebuild.py)."""


def predict_heap(
    scenario: Scenario, target: TargetSpec, go_type: str, sample: HeapSample, entries: int
) -> HeapPrediction:
    """The designed heap of one replica holding ``entries`` keys, with the backlog its sample shows.

    The replication backlog is predicted as the design allows it: a bounded queue never holds more
    than its capacity, so a queue that lost its bound is heap the model does not expect.
    """
    prediction = predict(go_type, entries, go_version=target.go, high_water=max(entries, sample.high_water))
    # Overwrites in scattered order leave a tiny payload alone in its block (payload.py).
    scattered = scenario.load.keys.distribution != "sequential"
    value_size = scenario.load.value.size
    if target.store == "subslice" and target.slice_buffer:
        value_size = max(value_size, target.slice_buffer)  # each value pins the whole buffer it slices
    beside = (
        key_bytes(entries)
        + value_payload_bytes(entries, target.value_type, value_size, scattered=scattered)
        + pointee_bytes(entries, go_type)
        + designed_backlog(scenario, target, sample)
    )
    low, high = prediction.live_bytes_range
    container = prediction.live_bytes
    cycle = None
    if target.store == "deleteretain" and target.rebuild_every > 0:
        # The map is rebuilt every rebuild_every deletes and churned in between: a sample lands
        # anywhere from just rebuilt to just before the next rebuild. The model predicts that
        # range (and the mean over the cycle) rather than a tolerance wide enough for it.
        c = rebuild_cycle(go_type, entries, target.rebuild_every, go_version=target.go)
        container, low, high, cycle = c.expected, c.low, c.high, c.to_json()
    if prediction.family == "sync.Map read/dirty" and scenario.load.user in READING_USERS:
        # Missed Loads promote the dirty map; the next new key rebuilds it from the read map, so
        # between promotions the structure can exist twice: anywhere up to the model's bound
        # (the model's peak_high_bytes, which allows each copy its old bucket array as well).
        high += int(prediction.details.get("peak_high_bytes", prediction.peak_bytes)) - prediction.live_bytes
    return HeapPrediction(
        expected=container + beside.expected,
        low=low + beside.low,
        high=high + beside.high,
        container=container,
        beside=beside.expected,
        cycle=cycle,
    )


def designed_backlog(scenario: Scenario, target: TargetSpec, sample: HeapSample) -> PayloadBytes:
    """The replication queues' heap for the backlog in ``sample``, capped at the designed bound."""
    capacity = target.replicate.capacity if target.replicate and target.replicate.queue == "bounded" else None
    op_payload = KEY_LENGTH + wire_value_size(target, scenario)
    return backlog_bytes(sample.replication_backlog, op_payload, capacity)


def wire_value_size(target: TargetSpec, scenario: Scenario) -> int:
    """Bytes of one write's value as sent (and replicated): decimal text for int64, N for [N]byte."""
    value_type = target.value_type
    if value_type == "int64":
        return len(b"42")  # workloads.plan.value_bytes
    if value_type.startswith("[") and value_type.endswith("]byte") and value_type != "[]byte":
        return int(value_type[1:-5])
    return scenario.load.value.size


def designed_target(deployed: TargetSpec, design: DesignSpec | None) -> TargetSpec:
    """The target as the check says it is designed: its own fields, overridden by the check's ``design``."""
    if design is None:
        return deployed
    return dataclasses.replace(
        deployed,
        store=deployed.store if design.store is None else design.store,
        value_type=deployed.value_type if design.value_type is None else design.value_type,
        slice_buffer=deployed.slice_buffer if design.slice_buffer is None else design.slice_buffer,
        replicate=deployed.replicate if design.replicate is None else design.replicate,
    )


def check_model(check: ModelCheck, scenario: Scenario, journal: Journal, facts: RunFacts) -> CheckResult:
    """Observed heap growth against the designed container's, at each ``at`` point and replica.

    The growth is measured since deploy, or with ``since`` between two points: then whatever the
    replica held at ``since`` (a container the model cannot spell, say) cancels out when its entries
    did not change, and only what changed in between (backlog, new keys) is predicted.
    """
    target = designed_target(scenario.target(check.target), check.design)
    tolerance = check.tolerance.fraction
    go_type = designed_go_type(target)
    expected = facts.expected_keys.get(target.name)
    if expected is None:
        return _inconclusive(check, f"the expected keys of target '{target.name}' are unknown (no load summary)")
    since = check.since or "deploy"
    rows: list[dict[str, Any]] = []
    verdict = Verdict.PASS
    for point in check.at:
        idle = _idle_growth(journal, target, since, point)
        for replica in range(target.replicas):
            base = journal.replica_samples(target.name, since, replica)
            here = journal.replica_samples(target.name, point, replica)
            if not base or not here:
                verdict = worst(verdict, Verdict.INCONCLUSIVE)
                rows.append({"point": point, "replica": replica, "missing": f"no heap sample at {since} or {point}"})
                continue
            # After the last phase the load has stopped and the workers' streams say exactly which keys
            # each replica holds; at an earlier boundary writes are in flight, so the model is asked
            # about the entries the replica reported and the count itself is not judged.
            final = point == f"{scenario.phases[-1].name}.end"
            entries = expected[replica] if final else here[0].entries
            if since != "deploy" and base[0].entries == entries and base[0].high_water == here[0].high_water:
                # The same keys at both points: the container, its keys and what they own did not
                # change, whatever they cost (no model needed); only the replication backlog can.
                b_now, b_then = (designed_backlog(scenario, target, s) for s in (here[0], base[0]))
                now = HeapPrediction(b_now.expected, b_now.low, b_now.high, 0, b_now.expected)
                then = HeapPrediction(b_then.expected, b_then.low, b_then.high, 0, b_then.expected)
            else:
                now = predict_heap(scenario, target, go_type, here[0], entries)
                then = (
                    HeapPrediction(0, 0, 0, 0, 0)
                    if since == "deploy"
                    else predict_heap(scenario, target, go_type, base[0], base[0].entries)
                )
            predicted = now.expected - then.expected
            low, high = now.low - then.high, now.high - then.low
            observed = here[0].live_bytes - base[0].live_bytes
            # max(relative, floor): a tiny or unchanged prediction is judged against the run's noise.
            floor = floor_of(
                sources=[base[0].source, here[0].source],
                since_unexplained=[],
                point_unexplained=[],
                idle_left_overs=[g for r, g in idle.items() if r != replica],
            )
            slack = max(tolerance * max(abs(predicted), 1), floor.bytes)
            ok = low - slack <= observed <= high + slack
            if final and here[0].entries != entries:
                ok = False
            rows.append(
                {
                    "point": point,
                    "since": since,
                    "replica": replica,
                    "entries_expected": entries,
                    "entries_observed": here[0].entries,
                    "predicted_bytes": predicted,
                    "predicted_container_bytes": now.container - then.container,
                    "predicted_range": [low, high],
                    "keys_payload_backlog_bytes": now.beside - then.beside,
                    "replication_backlog_ops": list(here[0].replication_backlog),
                    "observed_bytes": observed,
                    "error": round((observed - predicted) / predicted, 4) if predicted else None,
                    "relative_bytes": round(tolerance * max(abs(predicted), 1)),
                    "floor": floor.to_json(),
                    "tolerance_bytes": round(slack),
                    "within_tolerance": ok,
                }
            )
            if now.cycle is not None:
                rows[-1]["rebuild_cycle"] = now.cycle
            unsettled_points = not here[0].settled or (since != "deploy" and not base[0].settled)
            if not ok and since == "deploy" and unsettled_points and observed > high + slack:
                # Load connections were open: their transport buffers are in the sample, so "too
                # high" cannot be told from a leak here. The settled sample at the end can.
                rows[-1]["unsettled"] = "load connections were open; their buffers are in the sample"
                verdict = worst(verdict, Verdict.INCONCLUSIVE)
            elif not ok:
                verdict = worst(verdict, Verdict.FAIL)
    measured = [r for r in rows if "observed_bytes" in r]
    if measured:
        worst_row = max(measured, key=lambda r: abs(r["error"] or 0))
        growth = "" if since == "deploy" else f" since {since}"
        summary = (
            f"{target.name} ({go_type}, Go {target.go}): observed {worst_row['observed_bytes']:,} B{growth} vs model "
            f"{worst_row['predicted_bytes']:,} B at {worst_row['point']} (error {worst_row['error'] or 0:+.1%}, "
            f"tolerance {tolerance:.0%}{_floor_note(worst_row)}); entries {worst_row['entries_observed']} of "
            f"{worst_row['entries_expected']} expected"
        )
        if "rebuild_cycle" in worst_row:
            lo, hi = worst_row["predicted_range"]
            summary += (
                f"; rebuilt every {worst_row['rebuild_cycle']['rebuild_every']:,} deletes, it can be anywhere in "
                f"{lo:,} … {hi:,} B over the cycle (the model's mean; the tolerance applies beyond that range)"
            )
        if any(worst_row["replication_backlog_ops"]):
            summary += f"; backlog {worst_row['replication_backlog_ops']} ops per peer"
        unsettled = sorted({r["point"] for r in rows if "unsettled" in r})
        if unsettled and verdict is Verdict.INCONCLUSIVE:
            summary += f"; above the range at {', '.join(unsettled)} while load connections were open"
    else:
        summary = f"{target.name}: no heap samples at {', '.join(check.at)}"
    return CheckResult(
        check.name, "model", verdict, summary, {"go_type": go_type, "tolerance": tolerance, "samples": rows}
    )


def _floor_note(row: dict[str, Any]) -> str:
    """ ", or the noise floor of N B" when the floor, not the relative tolerance, set the allowance."""
    floor = row["floor"]
    if floor["bytes"] <= row["relative_bytes"]:
        return ""
    return f", or the noise floor of {floor['bytes']:,} B ({floor['decided_by']})"


def _idle_growth(journal: Journal, target: TargetSpec, since: str, point: str) -> dict[int, int]:
    """The heap growth of each replica that held the same keys and no backlog at both points: noise."""
    idle = {}
    for replica in range(target.replicas):
        base = journal.replica_samples(target.name, since, replica)
        here = journal.replica_samples(target.name, point, replica)
        if not base or not here:
            continue
        b, h = base[0], here[0]
        if (b.entries, b.high_water) == (h.entries, h.high_water) and not any(h.replication_backlog):
            idle[replica] = h.live_bytes - b.live_bytes
    return idle


def check_promql(check: PromqlCheck, scenario: Scenario, journal: Journal, facts: RunFacts) -> CheckResult:
    """Every sample during the named phases within the bound. A bound crossed in real data fails;
    otherwise a phase whose samples cover less than MIN_COVERAGE of its evaluation points (a scrape
    cut off, a target gone: stale or missing data) makes the check inconclusive, never a pass."""
    expr = check.expr
    below, above = check.below, check.above
    if facts.prometheus is None:
        return _inconclusive(check, "Prometheus was not available", query=expr)
    step = scenario.scrape_interval_s
    windows = []
    values: list[float] = []
    gaps = []
    for phase_name in check.during:
        window = journal.phase(phase_name)
        if window is None:
            return _inconclusive(check, f"phase '{phase_name}' did not run to its end", query=expr)
        series = facts.prometheus.query_range(expr, window.start_wall, window.end_wall, step)
        phase_values = [v for s in series for _, v in s.values if not math.isnan(v)]
        covered = len({t for s in series for t, v in s.values if not math.isnan(v)})
        expected = int((window.end_wall - window.start_wall) / step) + 1
        windows.append(
            {
                "phase": phase_name,
                "start": window.start_wall,
                "end": window.end_wall,
                "samples": len(phase_values),
                "points_covered": covered,
                "points_expected": expected,
            }
        )
        if covered < MIN_COVERAGE * expected:
            gaps.append(f"{phase_name} ({covered} of {expected} points)")
        values += phase_values
    evidence = {"query": expr, "below": below, "above": above, "windows": windows}
    if not values:
        return _inconclusive(check, f"no samples of `{expr}` during {', '.join(check.during)}", **evidence)
    worst_high, worst_low = max(values), min(values)
    failures = []
    if below is not None and worst_high >= below:
        failures.append(f"reached {worst_high:.6g}, bound below {below:g}")
    if above is not None and worst_low <= above:
        failures.append(f"fell to {worst_low:.6g}, bound above {above:g}")
    evidence.update({"max": worst_high, "min": worst_low, "samples": len(values)})
    bounds = " and ".join(f"{word} {b:g}" for word, b in (("below", below), ("above", above)) if b is not None)
    if failures:
        return CheckResult(check.name, "promql", Verdict.FAIL, f"`{expr}` {'; '.join(failures)}", evidence)
    if gaps:
        return CheckResult(
            check.name, "promql", Verdict.INCONCLUSIVE,
            f"`{expr}` stayed {bounds} where there was data, but samples are missing or stale in "
            f"{', '.join(gaps)}: cannot tell it held",
            evidence,
        )  # fmt: skip
    return CheckResult(
        check.name, "promql", Verdict.PASS,
        f"`{expr}` stayed {bounds} over {len(values)} samples (max {worst_high:.6g}, min {worst_low:.6g})",
        evidence,
    )  # fmt: skip


def check_crash(check: CrashCheck, scenario: Scenario, journal: Journal, facts: RunFacts) -> CheckResult:
    target = check.target
    expect = check.expect
    crashes = [e for e in journal.crashes() if e.data.get("target") == target]
    evidence = {"crashes": [{"component": e.name, "message": e.data.get("message"), "t": e.wall} for e in crashes]}
    if expect == "none":
        if crashes:
            first = crashes[0]
            return CheckResult(
                check.name, "crash", Verdict.FAIL, f"{first.name} died: {first.data.get('message')}", evidence
            )
        return CheckResult(check.name, "crash", Verdict.PASS, f"no replica of '{target}' died", evidence)
    wanted = check.message or FATAL_DEFAULT
    matching = [e for e in crashes if wanted in str(e.data.get("message", ""))]
    if matching:
        return CheckResult(
            check.name, "crash", Verdict.PASS, f"{matching[0].name} died as expected: {matching[0].data['message']}",
            evidence,
        )  # fmt: skip
    if crashes:
        return CheckResult(
            check.name, "crash", Verdict.FAIL,
            f"'{target}' died, but not with '{wanted}': {crashes[0].data.get('message')}", evidence,
        )  # fmt: skip
    return CheckResult(
        check.name, "crash", Verdict.FAIL, f"'{target}' was expected to die with '{wanted}' and did not", evidence
    )
