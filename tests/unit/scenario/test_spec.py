"""Faults and checks as typed dataclasses: defaults from the schema, values parsed once, and the
report's plan still listing them as the scenario wrote them."""

from __future__ import annotations

import pytest

from orchestrator.core.errors import UsageError
from orchestrator.core.units import Duration, Percent
from orchestrator.scenario import load_scenario_text
from orchestrator.scenario.spec import (
    BaselineCheck,
    CrashCheck,
    DesignSpec,
    KillFault,
    ModelCheck,
    NetemFault,
    PartitionAmong,
    PartitionGroups,
    PauseFault,
    PromqlCheck,
    RecoveryCheck,
    ReplicateSpec,
    build_fault,
)

SCENARIO = """
apiVersion: mapquake/v1
kind: Scenario
name: typed
targets:
  - {name: kv, store: ringbuffer, replicas: 3, replicate: {queue: unbounded}}
load: {keys: {space: 100}}
phases:
  - name: a
    duration: 1m30s
    faults:
      - {partition: {shape: halves, among: kv}}
      - {partition: {groups: [load, kv], shape: one-way, mode: reject}}
      - {netem: {target: kv, delay: 0.5s, jitter: 1m, loss: 12.50%}}
      - {kill: {target: kv}}
      - {pause: {target: kv, replica: 2, for: 1m30s}}
      - {pause: {target: kv}}
  - {name: b, duration: 10s}
checks:
  - model: live_heap
    target: kv
    at: [a.end]
    since: a.start
    design: {replicate: {queue: bounded}, store: ringbuffer}
  - {name: m2, model: live_heap, target: kv, at: [b.end], tolerance: 10.0%,
     design: {slice_buffer: 0, value_type: string}}
  - {promql: up, below: 2, during: [a]}
  - {promql: up, above: 0.5, below: 3.0, during: [a, b]}
  - {recovery: up, below: 100, within: 1m30s}
  - {crash: kv}
  - {crash: kv, expect: fatal, message: boom}
  - {baseline: up, during: [a]}
  - {baseline: up, during: [a], worse_if: lower, alpha: 0.1, min_runs: 5}
"""


def test_faults_are_typed_with_defaults_applied_and_durations_parsed() -> None:
    faults = load_scenario_text(SCENARIO).phases[0].faults
    assert faults == (
        PartitionAmong(among="kv", shape="halves", mode="drop"),
        PartitionGroups(groups=("load", "kv"), shape="one-way", mode="reject"),
        NetemFault(
            target="kv", delay=Duration(0.5, "0.5s"), jitter=Duration(60.0, "1m"), loss=Percent(0.125, "12.50%")
        ),
        KillFault(target="kv", replica=0),
        PauseFault(target="kv", replica=2, resume_after=Duration(90.0, "1m30s")),
        PauseFault(target="kv", replica=0, resume_after=None),
    )
    assert [f.kind for f in faults] == ["partition", "partition", "netem", "kill", "pause", "pause"]


def test_checks_are_typed_with_the_schemas_defaults() -> None:
    checks = load_scenario_text(SCENARIO).checks
    assert checks[0] == ModelCheck(
        name="model-0",
        model="live_heap",
        target="kv",
        tolerance=Percent(0.05, "5%"),
        at=("a.end",),
        since="a.start",
        design=DesignSpec(
            store="ringbuffer", value_type=None, replicate=ReplicateSpec("bounded", 10_000), slice_buffer=None
        ),
    )
    assert isinstance(checks[1], ModelCheck) and checks[1].tolerance.fraction == pytest.approx(0.1)
    assert checks[1].since is None
    assert checks[2] == PromqlCheck(name="promql-2", expr="up", below=2, above=None, during=("a",))
    assert checks[4] == RecoveryCheck(name="recovery-4", expr="up", below=100, within=Duration(90.0, "1m30s"))
    assert checks[5] == CrashCheck(name="crash-5", target="kv", expect="none", message=None)
    assert checks[7] == BaselineCheck(
        name="baseline-7", expr="up", during=("a",), worse_if="higher", alpha=0.05, min_runs=3
    )
    assert [c.kind for c in checks] == ["model", "model", "promql", "promql", "recovery", "crash", "crash"] + [
        "baseline"
    ] * 2


def test_the_plan_lists_faults_and_checks_as_the_scenario_wrote_them() -> None:
    """report.json's plan keeps its shape: {kind, params} per fault, {kind, name, params} per check."""
    plan = load_scenario_text(SCENARIO).to_json()
    assert plan["phases"][0]["faults"] == [
        {"kind": "partition", "params": {"among": "kv", "shape": "halves"}},
        {"kind": "partition", "params": {"groups": ["load", "kv"], "mode": "reject", "shape": "one-way"}},
        {"kind": "netem", "params": {"delay": "0.5s", "jitter": "1m", "loss": "12.50%", "target": "kv"}},
        {"kind": "kill", "params": {"target": "kv"}},
        {"kind": "pause", "params": {"for": "1m30s", "replica": 2, "target": "kv"}},
        {"kind": "pause", "params": {"target": "kv"}},
    ]
    assert plan["phases"][1]["faults"] == []
    assert plan["checks"] == [
        {
            "kind": "model",
            "name": "model-0",
            "params": {
                "at": ["a.end"],
                "design": {"replicate": {"queue": "bounded"}, "store": "ringbuffer"},
                "model": "live_heap",
                "since": "a.start",
                "target": "kv",
                "tolerance": "5%",
            },
        },
        {
            "kind": "model",
            "name": "m2",
            "params": {
                "at": ["b.end"],
                "design": {"slice_buffer": 0, "value_type": "string"},
                "model": "live_heap",
                "target": "kv",
                "tolerance": "10.0%",
            },
        },
        {"kind": "promql", "name": "promql-2", "params": {"below": 2, "during": ["a"], "promql": "up"}},
        {
            "kind": "promql",
            "name": "promql-3",
            "params": {"above": 0.5, "below": 3.0, "during": ["a", "b"], "promql": "up"},
        },
        {"kind": "recovery", "name": "recovery-4", "params": {"below": 100, "recovery": "up", "within": "1m30s"}},
        {"kind": "crash", "name": "crash-5", "params": {"crash": "kv", "expect": "none"}},
        {"kind": "crash", "name": "crash-6", "params": {"crash": "kv", "expect": "fatal", "message": "boom"}},
        {
            "kind": "baseline",
            "name": "baseline-7",
            "params": {"alpha": 0.05, "baseline": "up", "during": ["a"], "min_runs": 3, "worse_if": "higher"},
        },
        {
            "kind": "baseline",
            "name": "baseline-8",
            "params": {"alpha": 0.1, "baseline": "up", "during": ["a"], "min_runs": 5, "worse_if": "lower"},
        },
    ]
    assert type(plan["checks"][2]["params"]["below"]) is int  # numbers as written, not coerced


def test_equal_faults_are_the_same_fault_however_written() -> None:
    assert build_fault("partition", {"shape": "halves", "among": "kv"}) == build_fault(
        "partition", {"among": "kv", "shape": "halves", "mode": "drop"}
    )
    assert build_fault("netem", {"target": "kv", "delay": "1s"}) == build_fault(
        "netem", {"target": "kv", "delay": "1000ms"}
    )
    assert build_fault("netem", {"target": "kv", "delay": "1s"}) != build_fault(
        "netem", {"target": "kv", "delay": "1s", "loss": "0%"}
    )
    assert build_fault("kill", {"target": "kv"}) != build_fault("pause", {"target": "kv"})


def test_durations_and_percentages_are_parsed_when_the_fault_is_built() -> None:
    with pytest.raises(UsageError, match="is not a duration"):
        build_fault("netem", {"target": "kv", "delay": "10"})
    with pytest.raises(UsageError, match="is not a percentage"):
        build_fault("netem", {"target": "kv", "loss": "10"})
