"""The load's delivery against its design: designed requests per phase, shortfall, saturation, verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.checks.delivery import CHECK_NAME, designed_phases, judge_delivery
from orchestrator.checks.verdict import DELIVERY_KIND, CheckResult, Verdict, overall
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import Scenario
from workloads.plan import PhaseDelivery, WorkerSummary

PACED = """\
apiVersion: mapquake/v1
kind: Scenario
name: unit
targets: [{name: ring, store: ringbuffer, replicas: 3}]
load:
  workers: WORKERS
  users: 4
  batch: 10
  rate: 100
  keys: {space: 2000, distribution: uniform}
phases:
  - {name: baseline, duration: 15s}
  - {name: quiet, duration: 6s, users: 0}
  - {name: partition, duration: 20s}
  - {name: more, duration: 10s, users: 8, rate: 50}
"""

CLOSED = """\
apiVersion: mapquake/v1
kind: Scenario
name: unit
targets: [{name: kv, store: syncmap}]
load: {users: 4, batch: 100, keys: {space: 50000}}
phases:
  - {name: fill, duration: 15s}
  - {name: steady, duration: 15s}
"""


def _paced(workers: int = 1, extra: tuple[str, ...] = ()) -> Scenario:
    return load_scenario_text(PACED.replace("WORKERS", str(workers)), "unit.yaml", extra)


def _phase(name: str, tasks: int, seconds: float, cpu: float, wait: float | None = 0.1, **more: int) -> PhaseDelivery:
    return PhaseDelivery(
        phase=name, tasks=tasks, requests=3 * tasks, writes=10 * tasks, seconds=seconds,
        cpu_seconds=cpu * seconds, cpu_peak=min(1.0, cpu + 0.1),
        wait_seconds=None if wait is None else wait * seconds, **more,
    )  # fmt: skip


def _worker(index: int, phases: list[PhaseDelivery], count: int = 1, stopped_by: str = "quit") -> WorkerSummary:
    return WorkerSummary(
        worker_index=index, worker_count=count, user="MapWriteUser", protocol="grpc", draws=0, writes=0,
        writes_per_target=[0, 0, 0], uncertain_per_target=[0, 0, 0], stopped_by=stopped_by, phases=tuple(phases),
    )  # fmt: skip


def test_a_phase_with_a_rate_designs_rate_x_users_x_seconds_less_the_users_start() -> None:
    designs = designed_phases(_paced())
    assert [d.phase for d in designs] == ["baseline", "quiet", "partition", "more"]
    # 4 users start at 4/s (spawn_rate defaults to users): one shape tick plus half the 1 s ramp.
    assert designs[0].counted_s == pytest.approx(15 - 1.5)
    assert designs[0].designed == pytest.approx(100 * 4 * 13.5)
    assert designs[1].designed is None  # users: 0
    assert designs[2].designed == pytest.approx(100 * 4 * 18.5)  # users come back after the pause
    # The phase's own rate; 4 users added to the 4 running, at 4/s.
    assert designs[3].counted_s == pytest.approx(10 - 1.5)
    assert designs[3].designed == pytest.approx(50 * 8 * 8.5)


def test_a_closed_loop_designs_no_amount_and_its_busy_worker_is_not_judged() -> None:
    scenario = load_scenario_text(CLOSED)
    assert all(d.designed is None for d in designed_phases(scenario))
    summary = _worker(0, [_phase("fill", 3000, 15, cpu=0.97), _phase("steady", 3000, 15, cpu=0.99)])
    result = judge_delivery(scenario, [summary])
    assert result.verdict is Verdict.PASS
    assert "closed loop" in result.summary and "99%" in result.summary
    assert [p["judged"] for p in result.evidence["phases"]] == ["closed loop: no designed rate"] * 2


def _full(scenario: Scenario, fraction: float, cpu: float = 0.4, wait: float | None = 0.1) -> list[PhaseDelivery]:
    return [
        _phase(d.phase, round((d.designed or 0) * fraction), d.duration_s, cpu if d.users else 0.01, wait)
        for d in designed_phases(scenario)
    ]


def test_a_load_delivered_as_designed_passes_with_its_numbers() -> None:
    scenario = _paced()
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.97))])
    assert result.verdict is Verdict.PASS, result.summary
    assert result.kind == DELIVERY_KIND and result.name == CHECK_NAME
    rows = {r["phase"]: r for r in result.evidence["phases"]}
    assert rows["baseline"]["designed_requests"] == 5400
    assert rows["baseline"]["delivered_fraction"] == pytest.approx(0.97, abs=0.001)
    assert rows["quiet"]["judged"] == "no users"
    assert "baseline 97%" in result.summary and "limit 90%" in result.summary


def test_a_starved_worker_is_inconclusive_naming_the_shortfall_and_the_cpu_request_on_kubernetes() -> None:
    scenario = _paced(extra=("backend=kubernetes",))
    # The Kubernetes case of issue 21: 20 % delivered, the worker mostly waiting for a CPU.
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.2, cpu=0.3, wait=0.6))])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "baseline delivered 1,080 of 5,400 designed requests (20%, margin 80%)" in result.summary
    assert "waited for a CPU 60%" in result.summary
    assert "kubernetes.locust.worker.requests.cpu, now 250m" in result.summary
    assert result.evidence["phases"][0]["short"] is True


def test_a_cpu_bound_worker_that_fell_short_is_told_to_add_workers() -> None:
    scenario = _paced()
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.5, cpu=0.98))])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "CPU-bound (98% of a core): more workers (load.workers: 1 -> 2)" in result.summary
    assert result.evidence["phases"][0]["saturated_workers"] == [0]


def test_a_load_that_started_late_is_named_with_when_its_first_request_came() -> None:
    scenario = _paced()
    # baseline: no request for its first 7.5 s, then the full rate (the Kubernetes run of issue 21's slice).
    phases = [
        p if p.phase != "baseline" else PhaseDelivery("baseline", tasks=3000, seconds=15, cpu_seconds=3.0,
                                                      wait_seconds=1.0, first_task_s=7.5)
        for p in _full(scenario, 0.97)
    ]  # fmt: skip
    result = judge_delivery(scenario, [_worker(0, phases)])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the load started late: its first request came 7.5 s into the phase" in result.summary
    assert result.evidence["phases"][0]["workers"][0]["first_request_s"] == 7.5


def test_slow_targets_are_named_when_the_generator_had_cpu_to_spare() -> None:
    scenario = _paced()
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.5, cpu=0.3, wait=0.05))])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "the targets answered too slowly for 100 requests/s per user" in result.summary


def test_a_saturated_worker_is_inconclusive_even_when_the_rate_was_met() -> None:
    scenario = _paced(workers=2)
    phases = _full(scenario, 0.5)  # each of the two workers delivers half
    hot = [p if p.phase != "partition" else _phase(p.phase, p.tasks, 20, cpu=0.95) for p in phases]
    result = judge_delivery(scenario, [_worker(0, phases, 2), _worker(1, hot, 2)])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "worker 1 was saturated in partition (95% of a core, limit 90%)" in result.summary
    assert "more workers (load.workers: 2 -> 3)" in result.summary


def test_the_margins_are_the_scenarios() -> None:
    scenario = _paced(extra=("load.delivery.min_fraction=0.4", "load.delivery.max_generator_cpu=99%"))
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.5, cpu=0.95))])
    assert result.verdict is Verdict.PASS, result.summary


def test_an_op_budget_that_ended_the_load_is_not_a_shortfall() -> None:
    scenario = _paced(extra=("load.max_ops=100",))
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.01), stopped_by="max_ops")])
    assert result.verdict is Verdict.PASS
    assert "load.max_ops" in result.summary


def test_no_per_phase_counts_is_inconclusive_when_a_rate_was_designed() -> None:
    result = judge_delivery(_paced(), [_worker(0, [])])
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "no per-phase counts" in result.summary
    assert judge_delivery(load_scenario_text(CLOSED), []).verdict is Verdict.PASS


def _result(kind: str, verdict: Verdict) -> CheckResult:
    return CheckResult("x", kind, verdict, "")


def test_an_undelivered_load_makes_the_run_inconclusive_never_a_pass_or_a_fail() -> None:
    short = _result(DELIVERY_KIND, Verdict.INCONCLUSIVE)
    assert overall([_result("model", Verdict.PASS), short]) is Verdict.INCONCLUSIVE
    assert overall([_result("model", Verdict.FAIL), short]) is Verdict.INCONCLUSIVE
    delivered = _result(DELIVERY_KIND, Verdict.PASS)
    assert overall([_result("model", Verdict.FAIL), delivered]) is Verdict.FAIL
    assert overall([_result("model", Verdict.PASS), delivered]) is Verdict.PASS
    assert overall([delivered]) is Verdict.INCONCLUSIVE  # no checks is never a pass


def test_a_phase_that_is_all_users_start_is_too_short_to_judge() -> None:
    scenario = _paced(extra=("phases.0.duration=1s",))
    (first, *_) = designed_phases(scenario)
    assert first.counted_s == 0 and first.designed is None
    result = judge_delivery(scenario, [_worker(0, _full(scenario, 0.0))])
    assert result.evidence["phases"][0]["judged"].startswith("too short to judge")


def test_a_locustfiles_requests_are_its_delivered_load(tmp_path: Path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n\nclass Shopper(HttpUser):\n    pass\n")
    text = CLOSED.replace(
        "load: {users: 4, batch: 100, keys: {space: 50000}}",
        "load: {users: 4, locustfile: locustfile.py, user: Shopper}",
    )
    scenario = load_scenario_text(text, str(tmp_path / "s.yaml"))
    phases = [
        PhaseDelivery("fill", requests=900, seconds=15, cpu_seconds=9),
        PhaseDelivery("steady", requests=800, seconds=15, cpu_seconds=9),
    ]
    result = judge_delivery(scenario, [_worker(0, phases)])
    assert result.verdict is Verdict.PASS
    assert [r["delivered_requests"] for r in result.evidence["phases"]] == [900, 800]
