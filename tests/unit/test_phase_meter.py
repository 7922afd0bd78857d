"""A worker's per-phase counts and CPU windows (workloads/delivery.py), on made-up clocks."""

from __future__ import annotations

import pytest

from workloads.delivery import PhaseMeter, main_thread_wait_seconds
from workloads.plan import Phase, PhaseDelivery, WorkerSummary
from workloads.shape import Timeline


class Clocks:
    def __init__(self) -> None:
        self.cpu = 0.0
        self.wait: float | None = 0.0

    def read_cpu(self) -> float:
        return self.cpu

    def read_wait(self) -> float | None:
        return self.wait


def _meter(clocks: Clocks) -> PhaseMeter:
    timeline = Timeline((Phase("a", 2.0, users=4), Phase("pause", 1.0, users=0), Phase("b", 2.0, users=4)))
    return PhaseMeter(timeline, cpu=clocks.read_cpu, wait=clocks.read_wait)


def test_counts_go_to_the_phase_the_workers_clock_says_is_running() -> None:
    clocks = Clocks()
    meter = _meter(clocks)
    meter.task(99.0)  # before the load started: not counted
    meter.start(100.0)
    for t in (100.1, 101.9, 103.5):
        meter.task(t)
    meter.request(100.5, failed=False)
    meter.request(103.1, failed=True)
    meter.wrote(101.0, 10)
    meter.task(105.5)  # after the last phase: users stopping, not counted
    a, pause, b = meter.phases()
    assert (a.tasks, a.requests, a.errors, a.writes) == (2, 1, 0, 10)
    assert a.first_task_s == pytest.approx(0.1)
    assert pause == PhaseDelivery("pause")
    assert (b.tasks, b.requests, b.errors) == (1, 1, 1)
    assert b.first_task_s == pytest.approx(0.5)  # b starts at 3 s


def test_a_cpu_window_goes_to_the_phase_that_held_its_middle() -> None:
    clocks = Clocks()
    meter = _meter(clocks)
    meter.start(100.0)
    clocks.cpu, clocks.wait = 0.9, 0.2
    meter.sample(101.0)
    clocks.cpu, clocks.wait = 1.4, 0.3
    meter.sample(102.0)
    clocks.cpu = 1.45
    meter.sample(102.8)  # middle 102.4: the pause
    a, pause, _ = meter.phases()
    assert a.seconds == pytest.approx(2.0)
    assert a.cpu_share == pytest.approx(0.7)
    assert a.cpu_peak == pytest.approx(0.9)
    assert a.wait_share == pytest.approx(0.15)
    assert pause.seconds == pytest.approx(0.8)
    assert pause.cpu_seconds == pytest.approx(0.05)


def test_without_schedstat_the_wait_is_unknown_not_zero() -> None:
    clocks = Clocks()
    clocks.wait = None
    meter = _meter(clocks)
    meter.start(100.0)
    clocks.cpu = 0.5
    meter.sample(101.0)
    assert meter.phases()[0].wait_seconds is None
    assert meter.phases()[0].wait_share is None


def test_the_summary_carries_the_phases_through_json() -> None:
    phases = (PhaseDelivery("a", tasks=3, requests=3, writes=30, seconds=2.0, cpu_seconds=1.0, wait_seconds=0.1),)
    summary = WorkerSummary(
        worker_index=0, worker_count=1, user="MapWriteUser", protocol="grpc", draws=30, writes=30,
        writes_per_target=[30], uncertain_per_target=[0], phases=phases,
    )  # fmt: skip
    assert WorkerSummary.from_dict(summary.to_dict()) == summary
    # A summary from before per-phase counts still reads.
    old = {k: v for k, v in summary.to_dict().items() if k != "phases"}
    assert WorkerSummary.from_dict(old).phases == ()


def test_this_kernel_says_how_long_the_main_thread_waited() -> None:
    waited = main_thread_wait_seconds()
    assert waited is None or waited >= 0
