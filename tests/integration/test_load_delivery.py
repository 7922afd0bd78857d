"""The load's delivery on a real local run: a rate the single worker cannot reach makes the run
inconclusive with the numbers and the fix; a rate it reaches is not flagged.

Real components throughout (namespaces, maptarget, Locust master and worker, Prometheus); the
scenarios are short (6 s of phases).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.netfixtures import needs_root
from tests.integration.test_run import leftovers, start_run, state_dir, the_run_id

__all__ = ["state_dir"]  # the fixture, used by name

pytestmark = [pytest.mark.integration, needs_root]

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: delivery
targets:
  - {name: kv, store: mutexmap}
load:
  user: MapWriteUser
  protocol: grpc
  workers: 1
  users: 2
  batch: BATCH
  rate: RATE
  keys: {space: 5000, distribution: sequential, seed: 3}
  value: {type: "[16]byte"}
phases:
  - {name: flood, duration: 4s}
  - {name: rest, duration: 2s, users: 0}
checks:
  - {name: alive, crash: kv, expect: none}
"""


def _run(tmp_path: Path, state: Path, *, rate: float, batch: int) -> tuple[int, str, dict]:  # type: ignore[type-arg]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.replace("RATE", str(rate)).replace("BATCH", str(batch)))
    report_dir = tmp_path / "report"
    proc = start_run(scenario, report_dir, state)
    run_id = the_run_id(state)
    output, _ = proc.communicate(timeout=300)
    report = json.loads((report_dir / "report.json").read_text())
    assert leftovers(run_id, state) == {"netns": [], "links": [], "processes": [], "state": []}
    return proc.returncode, output, report


def _delivery(report: dict) -> dict:  # type: ignore[type-arg]
    (entry,) = [c for c in report["checks"] if c["kind"] == "delivery"]
    return entry  # type: ignore[no-any-return]


def test_a_rate_the_worker_cannot_reach_makes_the_run_inconclusive_with_the_numbers(
    tmp_path: Path, state_dir: Path
) -> None:
    # 2 users x 50 000 requests/s of one Put each: far beyond one Python worker (a few thousand/s).
    code, output, report = _run(tmp_path, state_dir, rate=50000, batch=1)
    assert code == 4, output
    assert report["verdict"] == "inconclusive"
    assert {c["name"]: c["verdict"] for c in report["checks"]}["alive"] == "pass"  # the checks held; the load did not
    delivery = _delivery(report)
    assert delivery["verdict"] == "inconclusive"
    flood = delivery["evidence"]["phases"][0]
    assert flood["phase"] == "flood" and flood["short"] is True
    assert flood["designed_requests"] == 2 * 50000 * 2.5  # 4 s less the users' start (1 s tick, half the ramp)
    assert 0 < flood["delivered_requests"] < 0.8 * flood["designed_requests"]
    assert flood["writes"] > 0 and flood["workers"][0]["cpu_mean"] > 0
    summary = delivery["summary"]
    assert f"flood delivered {flood['delivered_requests']:,} of {flood['designed_requests']:,} designed" in summary
    assert "Fix:" in summary
    assert "load-delivery" in output and "INCONCLUSIVE" in output  # the terminal summary says it too
    junit = (tmp_path / "report" / "junit.xml").read_text()
    assert 'name="load-delivery"' in junit and "inconclusive: the load was not delivered" in junit
    assert "Delivery against the design" in (tmp_path / "report" / "report.html").read_text()


def test_a_rate_the_worker_reaches_is_not_flagged(tmp_path: Path, state_dir: Path) -> None:
    # 2 users x 20 requests/s of batches of 10: 400 writes/s, a small share of one worker.
    code, output, report = _run(tmp_path, state_dir, rate=20, batch=10)
    assert code == 0, output
    delivery = _delivery(report)
    assert delivery["verdict"] == "pass", delivery["summary"]
    flood, rest = delivery["evidence"]["phases"]
    assert flood["delivered_fraction"] >= 0.8 and flood["saturated_workers"] == []
    assert rest["judged"] == "no users"
    assert flood["workers"][0]["cpu_mean"] < 0.9
