"""The phase timeline: which phase runs at a given time, and what Locust's shape should return.

Pure logic, no locust import: the locustfile's ``PlanShape(LoadTestShape)``
delegates ``tick()`` to ``Timeline.tick(run_time)``, and the workers use
``Timeline.rate_per_user(run_time)`` for the per-phase rate limit. Phases
follow each other from time 0; after the last one ``tick`` returns None, which
makes a headless Locust master stop the test and quit by itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import accumulate

from workloads.plan import Phase


class Timeline:
    """Phases laid end to end from t = 0."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ValueError("a timeline needs at least one phase")
        self.phases = tuple(phases)
        self.ends = tuple(accumulate(p.duration_s for p in self.phases))
        """End of each phase, in seconds from the start of the run."""

    @property
    def total_s(self) -> float:
        return self.ends[-1]

    def index_at(self, run_time: float) -> int | None:
        """Index of the phase running at ``run_time`` seconds (a phase owns [start, end)), None after the last."""
        if run_time < 0 or not math.isfinite(run_time):
            return 0 if run_time < 0 else None
        for i, end in enumerate(self.ends):
            if run_time < end:
                return i
        return None

    def phase_at(self, run_time: float) -> Phase | None:
        i = self.index_at(run_time)
        return None if i is None else self.phases[i]

    def start_of(self, index: int) -> float:
        return 0.0 if index == 0 else self.ends[index - 1]

    def tick(self, run_time: float) -> tuple[int, float] | None:
        """(users, spawn_rate) for Locust's LoadTestShape.tick, or None once the last phase ended."""
        phase = self.phase_at(run_time)
        if phase is None:
            return None
        return phase.users, phase.effective_spawn_rate

    def rate_per_user(self, run_time: float) -> float | None:
        """Requests/s each user may issue at ``run_time``: the phase's rate split over its users, or None."""
        phase = self.phase_at(run_time)
        if phase is None or phase.rate is None or phase.users == 0:
            return None
        return phase.rate / phase.users


CATCH_UP_S = 1.0
"""How far behind its schedule a paced user may be and still make it up (by starting its next tasks at
once); beyond that its schedule restarts from now, so a stall is not paid back as a long burst."""


def paced_start(rate_per_user: float | None, last_start: float | None, now: float) -> float:
    """When a paced user's next task is scheduled to start: one period after the previous one's
    scheduled start, so tasks that ran late are made up by the next ones (within CATCH_UP_S) and the
    phase delivers its rate whenever the user can keep up on average. ``last_start`` is the previous
    task's scheduled start (None for the first task); without a rate: now."""
    if rate_per_user is None or last_start is None:
        return now
    return max(last_start + 1.0 / rate_per_user, now - CATCH_UP_S)


def throttle_wait(rate_per_user: float | None, last_start: float | None, now: float) -> float:
    """Seconds a user waits before its next task so it issues ``rate_per_user`` tasks/s (paced_start).

    Locust's constant_throughput with the rate read from the phase, but keeping its schedule: a
    constant_throughput user that runs one slow task loses that time for good.
    """
    return max(0.0, paced_start(rate_per_user, last_start, now) - now)
