"""--dry-run shows a fault that the next phase lists identically as continuing, not healed."""

from __future__ import annotations

from chaos.resolve import describe_timeline
from orchestrator.backends.local.topology import planned_topology
from orchestrator.scenario import load_scenario_text

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: spans
targets: [{name: kv, store: syncmap, replicas: 3}]
load: {keys: {space: 100}}
phases:
  - {name: cut, duration: 5s, faults: [{partition: {shape: halves, among: kv}}]}
  - {name: hold, duration: 2s, users: 0, faults: [{partition: {shape: halves, among: kv}}]}
  - {name: heal, duration: 5s, faults: [{partition: {shape: isolate-one, among: kv}}]}
"""


def test_a_fault_listed_again_in_the_next_phase_continues() -> None:
    scenario = load_scenario_text(SCENARIO)
    text = describe_timeline(scenario, planned_topology(scenario))
    assert "partition among kv (halves), drop  [heal: continues into hold]" in text
    assert "partition among kv (halves), drop  [still in place from cut]" in text
    assert "partition among kv (isolate-one), drop  [heal: phase end]" in text
