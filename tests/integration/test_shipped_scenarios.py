"""The shipped scenarios, run for real: the verdicts the docs promise.

- quickstart passes (the front door);
- racymap-crash passes: the target dies with Go's fatal error and the run records it;
- ringbuffer-partition passes with its bounded queues, and the same run with the bound removed
  (`--set targets.0.replicate.queue=unbounded`) fails its model check, which still expects the
  designed bound.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.gotargets import REPO_ROOT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="runs create network namespaces: needs root"),
]


def run_scenario(name: str, tmp_path: Path, *overrides: str) -> tuple[int, dict[str, str], str]:
    report_dir = tmp_path / "report"
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(tmp_path / "state"), "MAPQUAKE_TREND_STORE": str(tmp_path / "t.db")}
    args = [sys.executable, "-m", "orchestrator.cli", "run", f"scenarios/{name}.yaml", "--report-dir", str(report_dir)]
    for override in overrides:
        args += ["--set", override]
    try:
        result = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=400)
    finally:
        subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, capture_output=True, timeout=120)
    report = json.loads((report_dir / "report.json").read_text())
    return result.returncode, {c["name"]: c["verdict"] for c in report["checks"]}, result.stdout + result.stderr


def test_quickstart_passes(tmp_path: Path) -> None:
    code, verdicts, output = run_scenario("quickstart", tmp_path)
    assert code == 0, output
    assert set(verdicts.values()) == {"pass"}


def test_racymap_dies_as_the_runtime_promises(tmp_path: Path) -> None:
    code, verdicts, output = run_scenario("racymap-crash", tmp_path)
    assert code == 0, output
    assert verdicts == {"dies-with-concurrent-map-writes": "pass"}


def test_ringbuffer_partition_holds_its_bound_and_a_lost_bound_fails_the_model(tmp_path: Path) -> None:
    code, verdicts, output = run_scenario("ringbuffer-partition", tmp_path / "bounded")
    assert code == 0, output
    assert set(verdicts.values()) == {"pass"}

    code, verdicts, output = run_scenario(
        "ringbuffer-partition", tmp_path / "unbounded", "targets.0.replicate.queue=unbounded"
    )
    assert code == 1, output
    assert verdicts["backlog-memory-as-designed"] == "fail"
    assert verdicts["backlog-stays-within-its-bound"] == "fail"
