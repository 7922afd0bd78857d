"""Scenario faults → concrete rules, on the planned local layout (exact values)."""

from __future__ import annotations

import pytest

from chaos.probe import Capabilities
from chaos.resolve import (
    CutRule,
    describe_timeline,
    resolve_fault,
    resolve_phase,
)
from orchestrator.backends.local.topology import planned_topology
from orchestrator.core.errors import UsageError
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import build_fault

SCENARIO = """
apiVersion: mapquake/v1
kind: Scenario
name: chaos-unit
targets:
  - {name: cache, store: ringbuffer, replicas: 3, replicate: {queue: unbounded}}
load:
  user: MapWriteUser
  protocol: grpc
  workers: 1
  users: 4
  keys: {space: 1000, distribution: uniform, seed: 1}
phases:
  - {name: baseline, duration: 5s}
  - name: cut
    duration: 10s
    faults:
      - {partition: {shape: halves, among: cache}}
      - {netem: {target: cache, delay: 50ms, jitter: 5ms, loss: 10%}}
  - name: chaos
    duration: 10s
    faults:
      - {partition: {groups: [load, cache], mode: reject}}
      - {pause: {target: cache, replica: 2, for: 2s}}
      - {kill: {target: cache, replica: 1}}
"""


@pytest.fixture
def scenario():  # type: ignore[no-untyped-def]
    return load_scenario_text(SCENARIO)


def test_planned_topology_follows_the_local_backend(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario, run_id="0a0b0c0d", subnet="198.18.7.0/24")
    assert [(n.name, n.address, n.netns, n.ifname) for n in topo.nodes] == [
        ("cache-0", "198.18.7.2", "mq-0a0b0c0d-cache-0", "mq0a0b0c0dn0"),
        ("cache-1", "198.18.7.3", "mq-0a0b0c0d-cache-1", "mq0a0b0c0dn1"),
        ("cache-2", "198.18.7.4", "mq-0a0b0c0d-cache-2", "mq0a0b0c0dn2"),
        ("prometheus", "198.18.7.5", "mq-0a0b0c0d-prometheus", "mq0a0b0c0dn3"),
        ("load", "198.18.7.6", "mq-0a0b0c0d-load", "mq0a0b0c0dn4"),
    ]


def test_halves_among_replicas(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario, run_id="0a0b0c0d", subnet="198.18.7.0/24")
    part, net = resolve_phase(scenario.phases[1], topo)
    assert part.key == "cut.0"
    assert part.cuts == (
        CutRule("cache-0", "mq-0a0b0c0d-cache-0", ("198.18.7.3", "198.18.7.4"), ("cache-1", "cache-2"), "drop"),
        CutRule("cache-1", "mq-0a0b0c0d-cache-1", ("198.18.7.2",), ("cache-0",), "drop"),
        CutRule("cache-2", "mq-0a0b0c0d-cache-2", ("198.18.7.2",), ("cache-0",), "drop"),
    )
    assert [(r.node, r.delay_s, r.jitter_s, r.loss) for r in net.netem] == [
        ("cache-0", 0.05, 0.005, 0.1),
        ("cache-1", 0.05, 0.005, 0.1),
        ("cache-2", 0.05, 0.005, 0.1),
    ]


def test_groups_reject_and_signals(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario, run_id="0a0b0c0d", subnet="198.18.7.0/24")
    part, pause, kill = resolve_phase(scenario.phases[2], topo)
    assert [(c.node, c.sources, c.mode) for c in part.cuts] == [
        ("cache-0", ("198.18.7.6",), "reject"),
        ("cache-1", ("198.18.7.6",), "reject"),
        ("cache-2", ("198.18.7.6",), "reject"),
        ("load", ("198.18.7.2", "198.18.7.3", "198.18.7.4"), "reject"),
    ]
    assert pause.signal is not None and pause.signal.node == "cache-2" and pause.heal_after_s == 2.0
    assert kill.signal is not None and (kill.signal.action, kill.signal.replica) == ("kill", 1)


def test_one_way_between_groups(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario, run_id="0a0b0c0d", subnet="198.18.7.0/24")
    fault = resolve_fault(
        build_fault("partition", {"groups": ["load", "targets"], "shape": "one-way"}), topo, phase="p", index=0
    )
    assert [c.node for c in fault.cuts] == ["cache-0", "cache-1", "cache-2"]  # the load's packets are refused
    assert all(c.sources == ("198.18.7.6",) for c in fault.cuts)


def test_resolve_errors(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario)
    with pytest.raises(UsageError, match="no target named 'db'"):
        resolve_fault(build_fault("netem", {"target": "db", "delay": "1ms"}), topo, phase="p", index=0)
    with pytest.raises(UsageError, match="overlap"):
        resolve_fault(build_fault("partition", {"groups": ["targets", "cache"]}), topo, phase="p", index=0)
    with pytest.raises(UsageError, match="no replica 5"):
        resolve_fault(build_fault("kill", {"target": "cache", "replica": 5}), topo, phase="p", index=0)


def test_loss_above_100_percent_is_refused(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario)
    with pytest.raises(UsageError, match=r"p\.0: loss 150% is not between 0% and 100%"):
        resolve_fault(build_fault("netem", {"target": "cache", "loss": "150%"}), topo, phase="p", index=0)
    with pytest.raises(UsageError, match="is not a duration"):  # parsed once, when the fault is built
        build_fault("netem", {"target": "cache", "delay": "10"})


def test_a_pause_for_heals_on_its_own_clock(scenario) -> None:  # type: ignore[no-untyped-def]
    topo = planned_topology(scenario)
    timed = resolve_fault(build_fault("pause", {"target": "cache", "for": "1m30s"}), topo, phase="p", index=0)
    assert (timed.heal_after_s, timed.summary) == (90.0, "pause cache replica 0 for 1m30s")
    untimed = resolve_fault(build_fault("pause", {"target": "cache", "replica": 1}), topo, phase="p", index=0)
    assert (untimed.heal_after_s, untimed.summary) == (None, "pause cache replica 1")


def test_describe_timeline(scenario) -> None:  # type: ignore[no-untyped-def]
    text = describe_timeline(scenario, planned_topology(scenario), Capabilities(nft=True, netem=False))
    lines = text.splitlines()
    assert lines[0] == "00:00.0–00:05.0  baseline"
    assert "    partition among cache (halves), drop  [heal: phase end]" in lines
    assert "      cache-0 (mq-00000000-cache-0): drop from cache-1 198.18.0.3, cache-2 198.18.0.4" in lines
    assert any("delay proxy" in line for line in lines)
    assert "    pause cache replica 2 for 2s  [heal: +2s]" in lines
    assert "    kill cache replica 1  [heal: never (a killed replica stays down)]" in lines
