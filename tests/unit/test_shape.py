"""The phase timeline behind Locust's shape: ticks, the end of the run, and the per-phase throttle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workloads.plan import Phase
from workloads.shape import CATCH_UP_S, Timeline, paced_start, throttle_wait

PHASES = (
    Phase("baseline", 10, users=4),
    Phase("ramp", 5, users=16, spawn_rate=2),
    Phase("pause", 3, users=0),
    Phase("throttled", 7, users=8, rate=400.0),
)


def test_tick_follows_the_phases_then_stops() -> None:
    tl = Timeline(PHASES)
    assert tl.total_s == 25
    assert tl.ends == (10, 15, 18, 25)
    assert tl.tick(0) == (4, 4.0)  # default spawn rate: all users in one second
    assert tl.tick(9.99) == (4, 4.0)
    assert tl.tick(10) == (16, 2)  # a phase owns [start, end)
    assert tl.tick(15.5) == (0, 1.0)
    assert tl.tick(24.9) == (8, 8.0)
    assert tl.tick(25) is None
    assert tl.tick(1e9) is None


def test_phase_lookup() -> None:
    tl = Timeline(PHASES)
    assert tl.index_at(-1) == 0
    assert tl.index_at(12) == 1
    assert tl.index_at(float("inf")) is None
    assert tl.start_of(0) == 0 and tl.start_of(3) == 18
    phase = tl.phase_at(16)
    assert phase is not None and phase.name == "pause"


def test_rate_is_split_over_the_phase_users() -> None:
    tl = Timeline(PHASES)
    assert tl.rate_per_user(1) is None
    assert tl.rate_per_user(16) is None  # no users, no rate
    assert tl.rate_per_user(20) == 50.0
    assert tl.rate_per_user(30) is None


def test_throttle_is_constant_throughput() -> None:
    assert throttle_wait(None, 0.0, 5.0) == 0.0
    assert throttle_wait(10.0, None, 5.0) == 0.0
    assert throttle_wait(10.0, 5.0, 5.03) == pytest.approx(0.07)
    assert throttle_wait(10.0, 5.0, 5.5) == 0.0  # a slow task never waits


def test_a_paced_user_makes_up_a_slow_task_within_a_bound() -> None:
    # Scheduled at 5.0, the task took until 5.25: the next is due at 5.1 and starts at once, and the
    # schedule stays on 5.1, 5.2, ... so the phase still gets 10 tasks/s.
    assert paced_start(10.0, 5.0, 5.25) == pytest.approx(5.1)
    assert paced_start(10.0, 5.1, 5.26) == pytest.approx(5.2)
    # Far behind (a stall): the schedule restarts no more than CATCH_UP_S behind now.
    assert paced_start(10.0, 5.0, 9.0) == pytest.approx(9.0 - CATCH_UP_S)
    assert paced_start(None, 5.0, 9.0) == 9.0


def test_empty_timeline_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one phase"):
        Timeline(())


@given(
    st.lists(
        st.tuples(st.floats(min_value=0.5, max_value=100), st.integers(min_value=0, max_value=1000)),
        min_size=1,
        max_size=8,
    ),
    st.floats(min_value=0, max_value=1000),
)
def test_tick_is_defined_exactly_until_the_end(spec: list[tuple[float, int]], t: float) -> None:
    tl = Timeline([Phase(f"p{i}", d, users=u) for i, (d, u) in enumerate(spec)])
    tick = tl.tick(t)
    if t < tl.total_s:
        assert tick is not None
        phase = tl.phase_at(t)
        assert phase is not None and tick[0] == phase.users and tick[1] > 0
    else:
        assert tick is None
