"""The inventory example (examples/inventory): a Go service that is not maptarget, with its own
locustfile and scenario. The healthy build passes; the same scenario on the leaking build fails its
model check; and a copy built outside this repository (its own module importing mapprobe from
the checkout) runs the same scenario with replicas, a partition and model checks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.targets.build import REPO_ROOT
from tests.integration.netfixtures import needs_root

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_root]

EXAMPLE = REPO_ROOT / "examples" / "inventory"
LEAK = "targets.0.args.8=--leak=true"


def run(scenario: Path, tmp_path: Path, *overrides: str) -> tuple[int, dict[str, Any], str]:
    env = {**os.environ, "MAPQUAKE_STATE_DIR": str(tmp_path / "state"), "MAPQUAKE_TREND_STORE": str(tmp_path / "t.db")}
    report_dir = tmp_path / "report"
    args = [sys.executable, "-m", "orchestrator.cli", "run", str(scenario), "--report-dir", str(report_dir)]
    for override in overrides:
        args += ["--set", override]
    try:
        result = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([sys.executable, "-m", "orchestrator.cli", "cleanup"], env=env, capture_output=True, timeout=120)
    return result.returncode, json.loads((report_dir / "report.json").read_text()), result.stdout + result.stderr


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    """The scenario's own checks' verdicts; the load-delivery check every run adds is left out (a
    closed-loop load has no designed rate to fall short of, and the exit code covers it)."""
    return {c["name"]: c["verdict"] for c in report["checks"] if c["name"] != "load-delivery"}


def test_the_healthy_build_passes(tmp_path: Path) -> None:
    code, report, output = run(EXAMPLE / "scenario.yaml", tmp_path)
    assert code == 0, output
    assert verdicts(report) == {"heap-follows-items": "pass", "p99-under-100ms": "pass", "no-crash": "pass"}
    assert [e["name"] for e in report["timeline"]["events"] if e["kind"] == "fault-applied"] == ["partition.0"]
    # map[string]*Item: what the entries own (SKU, Item, name) is measured by mapprobe and attributed.
    heap = next(c for c in report["checks"] if c["name"] == "heap-follows-items")
    for row in heap["evidence"]["samples"]:
        (items,) = row["maps"]
        assert items["go_type"].startswith("map[string]*struct{"), items
        assert items["owned_from"] == "mapprobe", items
        assert items["owned_bytes"] >= 50 * items["entries"][1], items  # a 48-byte Item and the strings


def test_the_leaking_build_fails_its_model_check(tmp_path: Path) -> None:
    code, report, output = run(EXAMPLE / "scenario.yaml", tmp_path, LEAK)
    assert code == 1, output
    assert verdicts(report)["heap-follows-items"] == "fail"
    heap = next(c for c in report["checks"] if c["name"] == "heap-follows-items")
    row = max(heap["evidence"]["samples"], key=lambda r: r["left_over_bytes"])
    assert row["left_over_bytes"] > 4 * row["tolerance_bytes"]  # the history, not noise


def test_a_service_built_outside_the_repository(tmp_path: Path) -> None:
    """Its own Go module, importing mapprobe (from this checkout: it is not published yet)."""
    outside = tmp_path / "my-inventory"
    shutil.copytree(EXAMPLE, outside, ignore=shutil.ignore_patterns("*_test.go"))
    subprocess.run(
        ["go", "mod", "edit", f"-replace=github.com/mapquake/mapquake/mapprobe={REPO_ROOT / 'mapprobe'}"],
        cwd=outside,
        check=True,
        timeout=60,
    )
    code, report, output = run(outside / "scenario.yaml", tmp_path)
    assert code == 0, output
    assert report["scenario"]["source"] == str(outside / "scenario.yaml")
    assert verdicts(report)["heap-follows-items"] == "pass"
