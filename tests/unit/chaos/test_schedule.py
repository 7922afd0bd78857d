"""The fault schedule: which faults apply, carry over and heal at each phase boundary (pure)."""

from __future__ import annotations

from chaos.schedule import FaultId, fault_schedule
from orchestrator.scenario.spec import FaultSpec, PhaseSpec, build_fault

CUT = build_fault("partition", {"shape": "halves", "among": "kv", "mode": "drop"})
DELAY = build_fault("netem", {"target": "kv", "delay": "50ms"})
KILL = build_fault("kill", {"target": "kv", "replica": 0})
PAUSE_FOR = build_fault("pause", {"target": "kv", "replica": 1, "for": "2s"})


def phase(name: str, *faults: FaultSpec) -> PhaseSpec:
    return PhaseSpec(name=name, duration_s=5.0, users=None, rate=None, faults=faults)


def test_a_fault_listed_once_applies_and_heals_in_its_phase() -> None:
    plan = fault_schedule([phase("base"), phase("cut", CUT, DELAY), phase("after")])
    assert [p.apply for p in plan] == [(), (FaultId("cut", 0), FaultId("cut", 1)), ()]
    assert plan[1].heal == (FaultId("cut", 0), FaultId("cut", 1))
    assert plan[1].continues == () and plan[2].carried == {}


def test_an_identical_listing_in_the_next_phase_continues_the_fault() -> None:
    plan = fault_schedule([phase("cut", CUT), phase("hold", DELAY, CUT), phase("hold2", CUT), phase("end")])
    first = FaultId("cut", 0)
    assert plan[0].continues == (first,) and plan[0].heal == ()
    assert plan[1].carried == {1: first} and plan[1].apply == (FaultId("hold", 0),)
    assert plan[1].heal == (FaultId("hold", 0),) and plan[1].continues == (first,)
    assert plan[2].carried == {0: first} and plan[2].apply == ()
    assert plan[2].heal == (first,)


def test_a_different_fault_is_healed_and_the_new_one_applied() -> None:
    other = build_fault("partition", {"shape": "halves", "among": "kv", "mode": "reject"})
    plan = fault_schedule([phase("a", CUT), phase("b", other)])
    assert plan[0].heal == (FaultId("a", 0),) and plan[1].apply == (FaultId("b", 0),)


def test_a_listing_that_differs_only_in_spelling_continues_the_fault() -> None:
    # mode: drop is the default; 0.05s is 50ms: the same fault, so it stays in place.
    same_cut = build_fault("partition", {"among": "kv", "shape": "halves"})
    same_delay = build_fault("netem", {"target": "kv", "delay": "0.05s"})
    plan = fault_schedule([phase("a", CUT, DELAY), phase("b", same_delay, same_cut)])
    assert plan[1].carried == {0: FaultId("a", 1), 1: FaultId("a", 0)} and plan[1].apply == ()


def test_two_identical_listings_each_pair_with_one_fault_in_place() -> None:
    plan = fault_schedule([phase("a", CUT), phase("b", CUT, CUT)])
    assert plan[1].carried == {0: FaultId("a", 0)}
    assert plan[1].apply == (FaultId("b", 1),)


def test_timed_faults_never_carry_and_kills_never_heal() -> None:
    plan = fault_schedule([phase("a", PAUSE_FOR, KILL), phase("b", PAUSE_FOR, KILL), phase("c")])
    assert plan[0].heal == (FaultId("a", 0),)  # stopped at the phase end if its clock has not run out
    assert plan[1].apply == (FaultId("b", 0),)
    assert plan[1].carried == {1: FaultId("a", 1)}  # the replica stays down; it is not killed again
    assert FaultId("a", 1) not in plan[1].heal


def test_fault_ids_print_as_phase_dot_index() -> None:
    assert str(FaultId("cut", 2)) == "cut.2"
