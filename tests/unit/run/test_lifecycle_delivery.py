"""The run adds the load's delivery to its results, and a short load makes the whole run inconclusive."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.core.errors import InfrastructureError
from orchestrator.run.lifecycle import RunOptions, run
from orchestrator.scenario import load_scenario_text
from tests.unit.run.fakebackend import FakeBackend

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: delivery
targets: [{name: kv, store: syncmap}]
load: {users: 2, rate: 50, keys: {space: 5000}}
phases:
  - {name: fill, duration: 2s}  # 1.5 s of users starting: 0.5 s x 2 users x 50/s = 50 designed
  - {name: rest, duration: 150ms, users: 0}
checks:
  - {name: no-crash, crash: kv, expect: none}
"""


@pytest.fixture(autouse=True)
def fresh_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MAPQUAKE_TREND_STORE", str(tmp_path / "trends.sqlite"))
    FakeBackend.instances.clear()
    yield
    FakeBackend.delivered = None
    FakeBackend.fail_at = FakeBackend.signal_at = None
    FakeBackend.signum, FakeBackend.failure = signal.SIGTERM, InfrastructureError


def _run(tmp_path: Path, delivered: float) -> tuple[int, dict]:  # type: ignore[type-arg]
    FakeBackend.delivered = delivered
    scenario = load_scenario_text(SCENARIO)
    record = run(scenario, RunOptions(report_dir=tmp_path / "report", progress=False), FakeBackend)
    return record.exit_code, json.loads((tmp_path / "report" / "report.json").read_text())


def test_a_load_delivered_as_designed_leaves_the_checks_verdict(tmp_path: Path) -> None:
    code, doc = _run(tmp_path, delivered=0.95)
    verdicts = {c["name"]: c["verdict"] for c in doc["checks"]}
    assert verdicts == {"no-crash": "pass", "load-delivery": "pass"}
    assert (doc["verdict"], code) == ("pass", 0)


def test_a_short_load_makes_a_passing_run_inconclusive_with_its_numbers(tmp_path: Path) -> None:
    code, doc = _run(tmp_path, delivered=0.3)
    (delivery,) = [c for c in doc["checks"] if c["kind"] == "delivery"]
    assert delivery["verdict"] == "inconclusive"
    assert "fill delivered 15 of 50 designed requests (30%, margin 80%)" in delivery["summary"]
    assert {c["name"]: c["verdict"] for c in doc["checks"]}["no-crash"] == "pass"
    assert (doc["verdict"], code) == ("inconclusive", 4)
