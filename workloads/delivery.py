"""What a worker delivers in each phase, and the CPU it spends doing it, by its own clock.

A worker counts its tasks, requests, acknowledged writes and failed requests into the phase its own
clock says is running (the phases laid end to end from the moment the load started on this worker;
Locust moves users on a once-a-second shape tick, so edges are good to about a second). Every
``CPU_WINDOW_S`` it reads the CPU its process used (all threads, as Locust's own CPU warning reads
it) and the time its main thread waited for a CPU (``/proc/self/schedstat``), and gives the window
to the phase that held the window's middle. The controller compares the counts with what the
scenario designed (``orchestrator/checks/delivery.py``).

No locust import: the clocks are passed in, so the meter is tested without a Locust process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from workloads.plan import PhaseDelivery
from workloads.shape import Timeline

CPU_WINDOW_S = 1.0
"""How often a worker reads its CPU: short enough for a phase of a few seconds to get several windows."""
SCHEDSTAT = Path("/proc/self/schedstat")
"""The main thread's scheduler statistics: ns on a CPU, ns runnable but waiting for one, timeslices."""


def process_cpu_seconds() -> float:
    """CPU seconds this process used so far, user and system, all threads."""
    return time.process_time()


def main_thread_wait_seconds() -> float | None:
    """Seconds this process's main thread has waited, runnable, for a CPU; None where not readable."""
    try:
        fields = SCHEDSTAT.read_text().split()
        return int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class _Window:
    """The clocks' readings at the start of the current CPU window."""

    at: float
    cpu: float
    wait: float | None


class PhaseMeter:
    """Per-phase counts and CPU windows of one worker. ``now`` is time.monotonic() in every call."""

    def __init__(
        self,
        timeline: Timeline,
        *,
        cpu: Callable[[], float] = process_cpu_seconds,
        wait: Callable[[], float | None] = main_thread_wait_seconds,
    ) -> None:
        self.timeline = timeline
        self._cpu = cpu
        self._wait = wait
        self._phases = [PhaseDelivery(phase=p.name) for p in timeline.phases]
        self._started: float | None = None
        self._window: _Window | None = None

    def start(self, now: float) -> None:
        """The load started on this worker: phase 0 begins, and the first CPU window."""
        if self._started is not None:
            return
        self._started = now
        self._window = _Window(now, self._cpu(), self._wait())

    def _index(self, now: float) -> int | None:
        if self._started is None:
            return None
        return self.timeline.index_at(now - self._started)

    def _add(self, now: float, **counts: int) -> None:
        index = self._index(now)
        if index is None:  # before the load started, or after its last phase (users stopping)
            return
        phase = self._phases[index]
        self._phases[index] = replace(phase, **{k: getattr(phase, k) + v for k, v in counts.items()})

    def task(self, now: float) -> None:
        index = self._index(now)
        if index is not None and self._phases[index].tasks == 0 and self._started is not None:
            since = now - self._started - self.timeline.start_of(index)
            self._phases[index] = replace(self._phases[index], first_task_s=round(since, 3))
        self._add(now, tasks=1)

    def request(self, now: float, *, failed: bool) -> None:
        self._add(now, requests=1, errors=int(failed))

    def wrote(self, now: float, n: int) -> None:
        self._add(now, writes=n)

    def sample(self, now: float) -> None:
        """Close the CPU window ending ``now`` and give it to the phase that held its middle."""
        window = self._window
        if window is None or now <= window.at:
            return
        cpu, wait = self._cpu(), self._wait()
        self._window = _Window(now, cpu, wait)
        index = self._index((window.at + now) / 2)
        if index is None:
            return
        seconds = now - window.at
        used = max(0.0, cpu - window.cpu)
        phase = self._phases[index]
        waited = None if wait is None or window.wait is None else max(0.0, wait - window.wait)
        self._phases[index] = replace(
            phase,
            seconds=phase.seconds + seconds,
            cpu_seconds=phase.cpu_seconds + used,
            cpu_peak=max(phase.cpu_peak, used / seconds),
            wait_seconds=None if waited is None else (phase.wait_seconds or 0.0) + waited,
        )

    def phases(self) -> tuple[PhaseDelivery, ...]:
        """What each phase got so far, rounded for the summary."""
        return tuple(
            replace(
                p,
                seconds=round(p.seconds, 3),
                cpu_seconds=round(p.cpu_seconds, 3),
                cpu_peak=round(p.cpu_peak, 3),
                wait_seconds=None if p.wait_seconds is None else round(p.wait_seconds, 3),
            )
            for p in self._phases
        )
