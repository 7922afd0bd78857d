"""A run with faults, end to end: the runner applies them through the agent at the phase start,
heals them at its end, journals both, and leaves no rule behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

from .test_run import leftovers, the_run_id

pytestmark = [
    pytest.mark.integration,
    needs_root,
]

SCENARIO = """\
apiVersion: mapquake/v1
kind: Scenario
name: cut-and-heal
targets:
  - {name: kv, store: syncmap, replicas: 3, replicate: {queue: bounded, capacity: 100000}}
load:
  user: MapWriteUser
  protocol: grpc
  users: 2
  batch: 10
  rate: 20
  keys: {space: 2000, distribution: uniform, seed: 3}
phases:
  - {name: before, duration: 3s}
  - {name: cut, duration: 5s, faults: [{partition: {shape: isolate-one, among: kv}}]}
  - {name: after, duration: 12s}
checks:
  # A replication call in flight on the cut connection times out after 5 s, and the kernel drops
  # the connection after 5 s of unacknowledged data (TCP_USER_TIMEOUT, from gRPC keepalive); a
  # new connection works as soon as the network does, so draining takes a few seconds. Under load
  # a scrape can catch a few ops queued behind the call in flight (2-5 at 200 writes/s): below 50
  # means drained, a stalled peer's backlog grows by ~130 ops a second.
  - {name: drains, recovery: 'max(mapquake_replication_backlog{target="kv"})', below: 50, within: 10s}
  - name: grew
    promql: 'max(max_over_time(mapquake_replication_backlog{target="kv"}[15s]))'
    above: 10
    during: [after]
"""


def _nft_tables_of(run_id: str) -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if run_id in line]


def test_partition_is_applied_journaled_and_healed(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    state, report_dir = tmp_path / "state", tmp_path / "report"
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(state), "MAPQUAKE_TREND_STORE": str(tmp_path / "t.sqlite")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        run_id = the_run_id(state)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
            subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, timeout=120, check=False)
    assert proc.returncode == 0, output
    assert "fault applied: partition among kv (isolate-one)" in output

    events = json.loads((report_dir / "report.json").read_text())["timeline"]["events"]
    applied = [e for e in events if e["kind"] == "fault-applied"]
    healed = [e for e in events if e["kind"] == "fault-healed"]
    assert len(applied) == len(healed) == 1
    cut_start = next(e for e in events if e["kind"] == "phase-start" and e["name"] == "cut")
    cut_end = next(e for e in events if e["kind"] == "phase-end" and e["name"] == "cut")
    assert cut_start["t"] <= applied[0]["t"] < cut_end["t"] <= healed[0]["t"]
    assert healed[0]["data"]["heal_reason"] == "phase-end"
    assert leftovers(run_id, state) == {"netns": [], "links": [], "processes": [], "state": []}
    assert _nft_tables_of(run_id) == []


BLIND = """\
apiVersion: mapquake/v1
kind: Scenario
name: blind-prometheus
targets:
  - {name: kv, store: mutexmap}
load:
  users: 2
  batch: 10
  rate: 20
  keys: {space: 2000}
phases:
  - {name: blind, duration: 8s, faults: [{partition: {groups: [prometheus, targets]}}]}
checks:
  - {name: heap-bounded, promql: 'max(go_memstats_heap_alloc_bytes{job="targets"})', below: 1.0e+12, during: [blind]}
  - {name: alive, crash: kv, expect: none}
"""


def _run(tmp_path: Path, scenario_text: str) -> tuple[int, str, dict[str, Any]]:
    """Run a scenario to its end; (exit code, output, report.json)."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(scenario_text)
    state, report_dir = tmp_path / "state", tmp_path / "report"
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(state), "MAPQUAKE_TREND_STORE": str(tmp_path / "t.sqlite")}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, timeout=120, check=False)
    report = json.loads((report_dir / "report.json").read_text())
    return result.returncode, result.stdout + result.stderr, report


LONG_CUT = SCENARIO.replace(
    "{name: cut, duration: 5s, faults: [{partition: {shape: isolate-one, among: kv}}]}",
    "{name: cut, duration: 40s, faults: [{partition: {shape: isolate-one, among: kv, mode: drop}}]}",
).replace("name: cut-and-heal", "name: long-cut")


def test_a_long_partition_drains_within_seconds_of_the_heal(tmp_path: Path) -> None:
    """40 s of dropped packets: TCP's retransmission timer on the old connection has grown to tens
    of seconds by the heal, so draining fast needs the connection replaced (keepalive's
    TCP_USER_TIMEOUT drops it during the cut; the reconnect works once the network does)."""
    assert LONG_CUT != SCENARIO
    code, output, report = _run(tmp_path, LONG_CUT)
    assert code == 0, output
    verdicts = {c["name"]: c["verdict"] for c in report["checks"] if c["kind"] != "delivery"}
    assert verdicts == {"drains": "pass", "grew": "pass"}, report["checks"]


def test_a_run_whose_prometheus_is_cut_from_the_targets_is_inconclusive(tmp_path: Path) -> None:
    code, output, report = _run(tmp_path, BLIND)
    # Every sample of the phase was lost to the cut: the bound cannot be judged, so never a pass.
    assert code == 4, output
    verdicts = {c["name"]: c["verdict"] for c in report["checks"] if c["kind"] != "delivery"}
    assert verdicts == {"heap-bounded": "inconclusive", "alive": "pass"}
    assert "missing or stale" in next(c["summary"] for c in report["checks"] if c["name"] == "heap-bounded")
