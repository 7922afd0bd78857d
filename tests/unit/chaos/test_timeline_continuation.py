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


LONG_SPAN = """\
apiVersion: mapquake/v1
kind: Scenario
name: spans
targets: [{name: kv, store: syncmap, replicas: 3}]
load: {keys: {space: 100}}
phases:
  - name: cut
    duration: 5s
    faults:
      - {partition: {shape: halves, among: kv}}
      - {kill: {target: kv, replica: 0}}
      - {pause: {target: kv, replica: 1, for: 1s}}
  - name: hold
    duration: 2s
    faults:
      - {pause: {target: kv, replica: 1, for: 1s}}
      - {partition: {shape: halves, among: kv}}
      - {kill: {target: kv, replica: 0}}
  - name: hold2
    duration: 2s
    faults:
      - {partition: {shape: halves, among: kv}}
      - {partition: {shape: halves, among: kv}}
"""


def _phase_lines(text: str, name: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(f"  {name}"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return [line.strip() for line in lines[start + 1 : end] if not line.startswith("      ")]


def test_the_timeline_follows_the_fault_schedule() -> None:
    scenario = load_scenario_text(LONG_SPAN)
    text = describe_timeline(scenario, planned_topology(scenario))
    assert _phase_lines(text, "cut") == [
        "partition among kv (halves), drop  [heal: continues into hold]",
        "kill kv replica 0  [heal: never (a killed replica stays down)]",
        "pause kv replica 1 for 1s  [heal: +1s]",
    ]
    assert _phase_lines(text, "hold") == [
        "pause kv replica 1 for 1s  [heal: +1s]",  # a fault on its own clock is applied again, never carried
        "partition among kv (halves), drop  [still in place from cut]  [heal: continues into hold2]",
        "kill kv replica 0  [still in place from cut]  [heal: never (a killed replica stays down)]",
    ]
    assert _phase_lines(text, "hold2") == [
        "partition among kv (halves), drop  [still in place from cut]  [heal: phase end]",
        "partition among kv (halves), drop  [heal: phase end]",  # the second identical listing is a new fault
    ]
