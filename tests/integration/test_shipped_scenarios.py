"""The shipped scenarios, run for real: the verdicts the docs promise.

- quickstart passes (the front door);
- map-grow passes on both runtimes: a Go 1.26 (Swiss) and a Go 1.23 (classic hmap) target, each
  heap on the model of its own runtime, and the seed claim of §1 confirmed for one, refuted for
  the other;
- subslice-retain passes: 32-byte values kept as slices of 4 KiB buffers cost 4 KiB each, as the
  model says, and the seed claim "value slices keep backing arrays alive" is confirmed;
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
from typing import Any

import pytest

from orchestrator.core.errors import InfrastructureError
from orchestrator.model.toolchains import find
from orchestrator.reporting.seedclaims import assess
from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    needs_root,
]


def run_scenario_report(name: str, tmp_path: Path, *overrides: str) -> tuple[int, dict[str, Any], str]:
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
    return result.returncode, report, result.stdout + result.stderr


def run_scenario(name: str, tmp_path: Path, *overrides: str) -> tuple[int, dict[str, str], str]:
    code, report, output = run_scenario_report(name, tmp_path, *overrides)
    return code, {c["name"]: c["verdict"] for c in report["checks"]}, output


def test_quickstart_passes(tmp_path: Path) -> None:
    code, verdicts, output = run_scenario("quickstart", tmp_path)
    assert code == 0, output
    assert set(verdicts.values()) == {"pass"}


def test_map_grow_follows_each_runtime_s_own_model(tmp_path: Path) -> None:
    try:
        find("1.23")
    except InfrastructureError as err:
        pytest.skip(f"Go 1.23 toolchain missing: {err}")
    code, report, output = run_scenario_report("map-grow", tmp_path)
    assert code == 0, output
    assert {c["name"]: c["verdict"] for c in report["checks"]} == {
        "swiss-steps-follow-the-model": "pass",
        "classic-steps-follow-the-model": "pass",
        "swiss-alive": "pass",
        "classic-alive": "pass",
    }
    assert report["go_versions"] == ["1.23", "1.26"]
    # The two targets really ran different runtimes: the same entries cost different heap, each
    # as its own model predicts (classic buckets hold 8 entries at load 6.5, Swiss groups 8 at 7/8).
    by_check = {c["name"]: c["evidence"]["samples"] for c in report["checks"] if c["kind"] == "model"}
    assert len(by_check["classic-steps-follow-the-model"]) == 4
    swiss = {s["point"]: s for s in by_check["swiss-steps-follow-the-model"]}
    classic = {s["point"]: s for s in by_check["classic-steps-follow-the-model"]}
    assert swiss["pause-1.end"]["predicted_bytes"] != classic["pause-1.end"]["predicted_bytes"]
    outcomes = {(a.target, a.section): a.outcome for a in assess(report)}
    assert outcomes[("classic", "§1, §2.1")] == "confirms"
    assert outcomes[("swiss", "§1, §2.1")] == "refutes"


def test_subslice_values_pin_their_buffers(tmp_path: Path) -> None:
    code, report, output = run_scenario_report("subslice-retain", tmp_path)
    assert code == 0, output
    assert {c["verdict"] for c in report["checks"]} == {"pass"}
    samples = {c["name"]: c["evidence"]["samples"][0] for c in report["checks"] if c["kind"] == "model"}
    pinned, cloned = samples["pinned-buffers-as-modelled"], samples["cloned-values-as-modelled"]
    assert pinned["entries_observed"] == cloned["entries_observed"] == 20_000
    # 4 KiB per entry against 32 B: the pinned heap is dominated by the buffers.
    assert pinned["observed_bytes"] > 20_000 * 4096 > 20 * cloned["observed_bytes"]
    outcomes = {(a.target, a.claim): a.outcome for a in assess(report)}
    assert outcomes[("pinned", "value slices keep their backing arrays alive")] == "confirms"


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
